"""The services the deployment tests share answer in their own protocols (tests/conftest.py fixtures): a
broken fixture would otherwise only show as skips (or, in CI, as failures far from the cause)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import sqlalchemy


def test_postgres_gives_each_test_its_own_empty_database(postgres_url, postgres_databases):
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("create table marker (id int)"))
        assert conn.execute(sqlalchemy.text("select current_database()")).scalar_one() in postgres_databases.created
    engine.dispose()
    other = postgres_databases.create("other")
    engine = sqlalchemy.create_engine(other)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("select to_regclass('marker')")).scalar_one() is None
    engine.dispose()
    postgres_databases.drop(sqlalchemy.engine.make_url(other).database)
    assert sqlalchemy.engine.make_url(other).database not in postgres_databases.created


def test_redis_answers_ping(redis_url):
    parts = urlsplit(redis_url)
    with socket.create_connection((parts.hostname, parts.port or 6379), timeout=3) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert sock.recv(16) == b"+PONG\r\n"


def test_rabbitmq_offers_amqp_0_9_1(rabbitmq_url):
    parts = urlsplit(rabbitmq_url)
    with socket.create_connection((parts.hostname, parts.port or 5672), timeout=3) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        frame = sock.recv(4096)
    # a method frame on channel 0: connection.start (class 10, method 10) with version 0-9
    assert frame[0] == 1 and frame[1:3] == b"\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"
    assert frame[11:13] == b"\x00\x09"
