"""The API beside a browser, over real HTTP: only configured Host names are answered (DNS rebinding), cross-site
POSTs are refused (Origin, Content-Type), the optional token guards /feedback, /health shows no absolute
paths; and ``fakenews serve`` + ``fakenews simulate`` still work with every rule on."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fakenews_ml.cli import main
from fakenews_ml.config import ServeConfig
from fakenews_ml.monitoring.prediction_log import PredictionLog

TOKEN = "s3cret-token-for-tests-0123456789"


def _server(bundles, server_starter, tmp_path_factory, config: ServeConfig, token: str | None = None):
    from fakenews_ml.serving.app import create_app

    log = PredictionLog(f"sqlite:///{tmp_path_factory.mktemp('guards') / 'predictions.sqlite'}")
    with pytest.MonkeyPatch.context() as mp:  # the token is read from the environment when the app is made
        if token:
            mp.setenv("FAKENEWS_API_TOKEN", token)
        else:
            mp.delenv("FAKENEWS_API_TOKEN", raising=False)
        app = create_app(bundles["v1"], log, config)
    return server_starter(app), log


@pytest.fixture(scope="module")
def api(bundles, server_starter, tmp_path_factory):
    server, log = _server(bundles, server_starter, tmp_path_factory, ServeConfig(reload_check_s=0.2))
    yield server
    server.stop()
    log.close()


@pytest.fixture(scope="module")
def guarded(bundles, server_starter, tmp_path_factory):
    config = ServeConfig(reload_check_s=0.2, allowed_hosts="api.example.com, 10.1.2.3:8080")
    server, log = _server(bundles, server_starter, tmp_path_factory, config, token=TOKEN)
    yield server
    server.stop()
    log.close()


def port_of(server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def logged(server) -> tuple[int, int]:
    server.flush()
    return server.app.state.log.count(), server.app.state.log.feedback_count()


# --- Host -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_default_hosts_are_the_bind_address_and_loopback_on_the_servers_port(api, http, name):
    response = http.get(api.url("/health"), headers={"host": f"{name}:{port_of(api)}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1:{other}",
        "localhost",  # no port: a page on port 80 of a rebound name
        "127.0.0.1.nip.io:{port}",
        "localhost.:{port}",
        "user@127.0.0.1:{port}",
        "127.0.0.1:{port}/x",
        "[::1:{port}",
    ],
)
def test_other_host_headers_are_refused_even_for_health(api, http, host):
    port = port_of(api)
    response = http.get(api.url("/health"), headers={"host": host.format(port=port, other=port + 1)})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "is not a name this server answers to" in detail and "--allowed-hosts" in detail
    assert "model_version" not in response.text  # nothing of the server's state reaches the rebound page


def _raw_request(server, request: bytes) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


@pytest.mark.parametrize(
    "request_text",
    [
        "GET /health HTTP/1.0\r\n\r\n",  # no Host at all
        "GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n",
    ],
    ids=["no host", "two hosts"],
)
def test_a_missing_or_repeated_host_is_refused(api, request_text):
    status, body = _raw_request(api, request_text.format(port=port_of(api)).encode())
    assert status == 400 and "Host" in json.loads(body)["detail"]


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("api.example.com", True),
        ("api.example.com:443", True),  # an entry without a port allows any port
        ("10.1.2.3:8080", True),
        ("10.1.2.3:9090", False),
        ("10.1.2.3", False),
        ("127.0.0.1:{port}", False),  # an explicit list replaces the defaults
        ("evil.example", False),
    ],
)
def test_configured_allowed_hosts(guarded, http, host, allowed):
    response = http.get(guarded.url("/health"), headers={"host": host.format(port=port_of(guarded))})
    assert response.status_code == (200 if allowed else 400), response.text


def test_a_star_allows_any_host(bundles, server_starter, tmp_path_factory, http):
    server, log = _server(bundles, server_starter, tmp_path_factory, ServeConfig(allowed_hosts=["*"]))
    try:
        for host in ("anything.example", "10.0.0.1:1234", "localhost"):
            assert http.get(server.url("/health"), headers={"host": host}).status_code == 200
    finally:
        server.stop()
        log.close()


@pytest.mark.parametrize("entries", ["bad host", "a/b", "x:99999", "x:port", " , ", "[::1"])
def test_invalid_allowed_hosts_are_a_one_line_error(entries, capsys):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ServeConfig(allowed_hosts=entries)
    code = main(["serve", "--model", "/nonexistent", "--allowed-hosts", entries])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--allowed-hosts" in err


# --- Origin ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "https://evil.example:{port}",
        "null",
        "http://127.0.0.1:{other}",
        "http://127.0.0.1.evil.example:{port}",
        "file://",
        "http://127.0.0.1:{port}/path",
        "not a url",
    ],
)
@pytest.mark.parametrize("path", ["/predict", "/feedback", "/predict/csv"])
def test_cross_site_posts_are_refused(api, http, origin, path):
    before = logged(api)
    port = port_of(api)
    headers = {"origin": origin.format(port=port, other=port + 1)}
    if path == "/predict/csv":
        response = http.post(api.url(path), files={"file": ("n.csv", b"title\nA headline\n")}, headers=headers)
    else:
        body = {"titles": ["A headline"]} if path == "/predict" else [{"title": "A headline", "label": 1}]
        response = http.post(api.url(path), json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert "cross-site request refused" in response.json()["detail"]
    assert logged(api) == before


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}"])
def test_same_origin_posts_are_served(api, http, origin):
    response = http.post(
        api.url("/predict"), json={"titles": ["Same origin"]}, headers={"origin": origin.format(port=port_of(api))}
    )
    assert response.status_code == 200, response.text


# --- Content-Type ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_json_endpoints_take_only_json(api, http, path, content_type):
    before = logged(api)
    body = json.dumps({"titles": ["A headline"]} if path == "/predict" else [{"title": "A headline", "label": 1}])
    headers = {"content-type": content_type} if content_type else {}
    response = http.post(api.url(path), content=body.encode(), headers=headers)
    assert response.status_code == 415, response.text
    assert "expected Content-Type: application/json" in response.json()["detail"]
    assert logged(api) == before


def test_json_with_a_charset_is_json(api, http):
    response = http.post(
        api.url("/predict"),
        content=b'{"titles": ["Charset given"]}',
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"])
def test_the_csv_endpoint_takes_only_uploads_and_csv(api, http, content_type):
    response = http.post(
        api.url("/predict/csv"), content=b"title\nA headline\n", headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text


# --- the optional token on /feedback ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN],
)
def test_feedback_needs_the_token_when_one_is_set(guarded, http, authorization, caplog):
    before = logged(guarded)
    headers = {"host": "api.example.com"}
    if authorization is not None:
        headers["authorization"] = authorization
    with caplog.at_level(logging.DEBUG):
        response = http.post(guarded.url("/feedback"), json=[{"title": "A headline", "label": 1}], headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in response.json()["detail"]
    assert TOKEN not in response.text and TOKEN[:-1] not in caplog.text
    assert logged(guarded) == before


def test_feedback_with_the_token_is_stored_and_predict_needs_none(guarded, http, caplog):
    headers = {"host": "api.example.com"}
    assert http.post(guarded.url("/predict"), json={"titles": ["No token here"]}, headers=headers).status_code == 200
    with caplog.at_level(logging.DEBUG):
        response = http.post(
            guarded.url("/feedback"),
            json=[{"title": "A labelled headline", "label": 1}],
            headers={**headers, "authorization": f"bearer {TOKEN}"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    assert TOKEN not in caplog.text


def test_without_a_token_feedback_is_open(api, http):
    response = http.post(api.url("/feedback"), json=[{"title": "Open feedback row", "label": 0}])
    assert response.status_code == 200, response.text


# --- /health ----------------------------------------------------------------------------------------------


def test_health_shows_folder_names_only(api, http, bundles):
    body = http.get(api.url("/health")).json()
    assert body["champion"] == "v1" and body["model_source"] == "v1"
    text = json.dumps(body)
    assert str(bundles["v1"].parent) not in text and "/tmp" not in text and os.sep + "v1" not in text


# --- `fakenews serve` with the rules, and `fakenews simulate` against it ---------------------------------


@pytest.fixture
def served_with_token(bundles, tmp_path, port_finder):
    port, log_url = port_finder(), f"sqlite:///{tmp_path / 'served.sqlite'}"
    output = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FAKENEWS_API_TOKEN": TOKEN}
    with open(output, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fakenews_ml.cli",
                "serve",
                "--model",
                str(bundles["v1"]),
                "--port",
                str(port),
                "--log-url",
                log_url,
                "--allowed-hosts",
                f"127.0.0.1:{port},localhost",
                "--access-log",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        try:
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fakenews serve did not come up:\n{output.read_text()}")
                time.sleep(0.2)
            yield {"url": base, "log_url": log_url, "output": output, "port": port}
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _simulate(url: str, csv_path: Path, capsys) -> dict:
    code = main(
        ["simulate", "--input", str(csv_path), "--n", "12", "--api", url, "--feedback", "--no-progress", "--seed", "1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_simulate_sends_the_token_from_the_environment(
    served_with_token, tmp_path, labelled_csv, capsys, monkeypatch, http
):
    csv_path = labelled_csv(tmp_path / "traffic.csv", n=12)
    monkeypatch.delenv("FAKENEWS_API_TOKEN", raising=False)
    without = _simulate(served_with_token["url"], csv_path, capsys)
    assert without["ok"] == 12 and without["feedback_stored"] == 0
    assert any("401" in error for error in without["feedback_errors"])

    monkeypatch.setenv("FAKENEWS_API_TOKEN", TOKEN)
    summary = _simulate(served_with_token["url"], csv_path, capsys)
    assert summary["ok"] == 12 and summary["feedback_stored"] == 12 and summary["feedback_errors"] == []
    # the name given with --allowed-hosts works on any port; other names do not
    localhost = f"http://localhost:{served_with_token['port']}"
    assert http.get(f"{localhost}/health").status_code == 200
    refused = http.get(f"{served_with_token['url']}/health", headers={"host": "evil.example"})
    assert refused.status_code == 400
    with PredictionLog(served_with_token["log_url"]) as log:
        assert log.feedback_count() == 12
    assert TOKEN not in served_with_token["output"].read_text()  # access log on, token never written
