"""Optuna's study storage from a SQLAlchemy URL, so several workers can share one study.

SQLite: a file (its folder is created), with a generous lock timeout for concurrent workers. PostgreSQL: the
URL as dagster-postgres writes it (``postgresql://user:password@host:port/db``); a ``search_path`` in its
``options`` puts the study tables in a schema of their own, created here, because Optuna and Dagster both keep
their migration state in a table named ``alembic_version`` and must not share one.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path
from urllib.parse import unquote

HEARTBEAT_S = 60  # a running trial's heartbeat; one silent for GRACE_S (its worker died) is marked failed
GRACE_S = 300
SQLITE_TIMEOUT_S = 60
CREATE_ATTEMPTS = 3  # opening a new storage: a lost race to create its tables is retried


def redact(url: str) -> str:
    """The URL with its password hidden (for manifests, metadata and logs)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def search_path_schema(url: str) -> str | None:
    """The first schema of a PostgreSQL URL's ``options=-csearch_path=...``, if it names one."""
    from sqlalchemy.engine import make_url

    options = make_url(url).query.get("options") or ""
    for option in (options,) if isinstance(options, str) else options:
        for part in unquote(option).split():
            for prefix in ("-csearch_path=", "--search_path=", "-c search_path="):
                if part.startswith(prefix):
                    return part[len(prefix) :].split(",")[0].strip() or None
    return None


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema`` (through libpq's ``options``)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _with_available_driver(url: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 when that is the driver installed."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if (
        parsed.drivername == "postgresql"
        and importlib.util.find_spec("psycopg2") is None
        and importlib.util.find_spec("psycopg") is not None
    ):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _create_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()


def open_storage(url: str):
    """An ``optuna.storages.RDBStorage`` for ``url`` (tables created on first use), with trial heartbeats."""
    import optuna
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    url = _with_available_driver(url)
    backend = make_url(url).get_backend_name()
    engine_kwargs: dict = {}
    if backend == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    elif backend == "postgresql":
        schema = search_path_schema(url)
        if schema:
            _create_schema(url, schema)
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are experimental; they are how a dead worker's trial ends
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            # Two workers opening a new storage at once both create its tables ("already exists") or stamp its
            # schema revision (a duplicate key) and one loses; when it retries, both are there and it creates
            # nothing. An unreachable database fails every attempt and raises.
            if attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
