"""Fixtures for the serving tests: tiny model bundles (a 2-layer random BERT with the packaged tokenizer,
saved directly as bundles: no training needed to test serving), and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="session")
def serving_encoder(tiny_encoder_dir) -> Path:
    """The suite's tiny random BERT (tests/conftest.py)."""
    return tiny_encoder_dir


def build_bundle(encoder: Path, out: Path, seed: int) -> Path:
    """A complete bundle with randomly initialised weights (``seed`` makes each version distinct)."""
    import torch

    from fakenews_ml.bundle import save_bundle
    from fakenews_ml.config import ModelConfig
    from fakenews_ml.model.classifier import HeadlineClassifier
    from fakenews_ml.model.encoder import load_tokenizer

    config = ModelConfig(encoder=str(encoder), max_length=32)
    torch.manual_seed(seed)
    model = HeadlineClassifier.from_pretrained(config).eval()
    return save_bundle(
        out,
        model,
        load_tokenizer(config),
        model.encoder.config,
        config,
        threshold=0.5,
        metrics={},
        lineage={"sources": [{"uri": f"synthetic://seed-{seed}"}]},
    )


@pytest.fixture(scope="session")
def bundles(serving_encoder, tmp_path_factory) -> dict[str, Path]:
    """Two bundles with different weights and versions: ``v1`` and ``v2``."""
    root = tmp_path_factory.mktemp("serving_bundles")
    return {name: build_bundle(serving_encoder, root / name, seed) for name, seed in (("v1", 1), ("v2", 2))}


@pytest.fixture(autouse=True)
def fakenews_home(tmp_path, monkeypatch) -> Path:
    """Every test writes under its own FAKENEWS_HOME (production link, default log), never ~/.fakenews."""
    home = tmp_path / "fakenews_home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("FAKENEWS_HOME", str(home))
    monkeypatch.delenv("FAKENEWS_PREDICTION_LOG_URL", raising=False)
    return home


@pytest.fixture(scope="session", autouse=True)
def _no_proxy_for_localhost():
    """Requests to 127.0.0.1 must never go through a proxy from the environment."""
    mp = pytest.MonkeyPatch()
    for name in PROXY_VARS:
        mp.delenv(name, raising=False)
    mp.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield
    mp.undo()


@dataclass
class LiveServer:
    """A uvicorn server in a thread of this process (real HTTP on 127.0.0.1; the app is inspectable)."""

    app: object
    base_url: str
    server: object
    thread: threading.Thread

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def flush(self) -> None:
        assert self.app.state.writer.flush(timeout=20), "prediction log rows did not land in time"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def start_server(app) -> LiveServer:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no port race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(app, f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture
def http():
    import httpx

    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


def synthetic_labelled_csv(path: Path, n: int = 30, seed: int = 0) -> Path:
    """``title,label`` rows with unique titles and both labels."""
    import pandas as pd

    words = ["senate", "budget", "miracle", "vaccine", "court", "secret", "election", "storm", "shocking", "report"]
    rows = [
        {"title": f"The {words[(i * 7 + seed) % len(words)]} story number {i} of batch {seed}", "label": (i + seed) % 2}
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# Helpers reach the test modules as fixtures: two folders' conftest.py files are both named "conftest",
# so importing from one of them by name is unreliable.
@pytest.fixture(scope="session")
def server_starter():
    return start_server


@pytest.fixture(scope="session")
def labelled_csv():
    return synthetic_labelled_csv
