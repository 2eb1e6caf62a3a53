"""Shared fixtures: an isolated FAKENEWS_HOME per test, the real datasets, and a real local HTTP server."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def fakenews_home(tmp_path, monkeypatch) -> Path:
    """Every test writes under its own FAKENEWS_HOME, never under ~/.fakenews."""
    home = tmp_path / "fakenews_home"
    home.mkdir()
    monkeypatch.setenv("FAKENEWS_HOME", str(home))
    monkeypatch.delenv("FAKENEWS_SOURCES", raising=False)
    return home


@pytest.fixture
def datasets_dir() -> Path:
    """The real datasets beside the project (``FAKENEWS_DATASETS`` overrides); skips when absent."""
    path = Path(os.environ.get("FAKENEWS_DATASETS") or DEFAULT_DATASETS).expanduser()
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path} (set FAKENEWS_DATASETS)")
    return path


@dataclass
class LocalHTTPServer:
    root: Path
    base_url: str
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def hits(self, name: str) -> int:
        return sum(1 for path in self.requests if path.split("?")[0] == f"/{name}")


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """A real ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) serving ``root``; counts GET requests."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []

    class CountingHandler(SimpleHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            super().do_GET()

        def log_message(self, format, *args):  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(CountingHandler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield LocalHTTPServer(root=root, base_url=f"http://{host}:{port}", requests=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
