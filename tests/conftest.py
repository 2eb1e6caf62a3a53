"""Shared fixtures: an isolated FAKENEWS_HOME per test, the real datasets, and a real local HTTP server."""

from __future__ import annotations

import functools
import os
import socket
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# The offline switches (DESIGN.md), so the suite never reaches for a network however it is started.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "NO_GCE_CHECK": "true",
    "DAGSTER_TELEMETRY_DISABLED": "1",
}
for _name, _value in OFFLINE.items():
    os.environ.setdefault(_name, _value)
# The tests replay fixed days of 2024; a real install starts its daily partitions where its data starts
# (tests/monitoring/test_partitions_start.py tests that default without this).
os.environ.setdefault("FAKENEWS_PARTITIONS_START", "2024-01-01")


@pytest.fixture(scope="session", autouse=True)
def torch_threads():
    """One torch thread per test process (``FAKENEWS_TEST_THREADS`` overrides): the test models are tiny,
    and on a small shared machine extra OpenMP threads spin against other processes and can make a
    training step ten times slower instead of faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("FAKENEWS_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)


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


@pytest.fixture(scope="session")
def port_finder():
    """A function returning a free TCP port on 127.0.0.1 (for servers a test starts)."""

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    return free_port


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


# ---------------------------------------------------------------------------------------------------------
# Model-side fixtures: a tiny randomly initialised BERT (fully offline), small synthetic frames, and one tiny
# trained bundle shared by the whole session. Session fixtures never rely on FAKENEWS_HOME (the autouse
# fixture above is per test): everything they write goes to explicit tmp folders.

FAKE_HOOKS = [
    "shocking",
    "you won't believe",
    "secret",
    "miracle",
    "exposed",
    "they don't want you to know",
    "outrageous",
    "bombshell",
]
REAL_HOOKS = [
    "senate",
    "quarterly earnings",
    "council",
    "minister",
    "report",
    "court ruling",
    "budget",
    "official statement",
]
SUBJECTS = [
    "the president",
    "a local doctor",
    "scientists",
    "the governor",
    "celebrities",
    "the new vaccine",
    "city hall",
    "the central bank",
    "farmers",
    "a famous actor",
    "the election",
    "oil prices",
]
FILLERS = [
    "today",
    "this week",
    "after the vote",
    "in new york",
    "again",
    "at last",
    "for the first time",
    "despite protests",
    "according to sources",
    "in a long awaited and widely discussed decision",
]


def make_news_frame(n: int, seed: int = 0, fake_share: float = 0.4, source: str = "synthetic"):
    """A canonical frame (id, title, text, label, source) with unique titles of uneven length; fake titles
    carry clickbait words, real ones newsroom words, so even a few training steps can separate them."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < fake_share).astype("int8")
    labels[0], labels[1] = 0, 1  # both classes, whatever n and the draw
    titles = []
    for i, label in enumerate(labels):
        hooks = FAKE_HOOKS if label else REAL_HOOKS
        words = [hooks[rng.integers(len(hooks))], SUBJECTS[rng.integers(len(SUBJECTS))]]
        words += [FILLERS[j] for j in rng.choice(len(FILLERS), size=int(rng.integers(0, 4)), replace=False)]
        if label:
            words.append("!!!")
        titles.append(f"{' '.join(words)} {seed}-{i}".capitalize())  # the suffix keeps titles unique
    frame = pd.DataFrame(
        {
            "id": [f"s{seed}-{i}" for i in range(n)],
            "title": titles,
            "text": "",
            "label": labels,
            "source": source,
        }
    )
    return frame.astype({"id": "string", "title": "string", "text": "string", "label": "int8", "source": "string"})


@pytest.fixture(scope="session")
def news_frame_factory():
    """``make_news_frame`` as a fixture (test modules cannot import conftest reliably)."""
    return make_news_frame


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with the packaged MiniLM tokenizer: ``ModelConfig(encoder=str(dir))``
    loads it offline in well under a second."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from fakenews_ml.model.encoder import resolve_encoder

    path = tmp_path_factory.mktemp("tiny_encoder")
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(None))
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=tokenizer.vocab_size,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    # no pooler: the classifier pools itself, and loading it would only print an 'unexpected keys' report
    BertModel(config, add_pooling_layer=False).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_frames() -> dict:
    """Small train/val/test canonical frames (disjoint titles)."""
    return {
        "train": make_news_frame(96, seed=1),
        "val": make_news_frame(32, seed=2),
        "test": make_news_frame(32, seed=3),
    }


@pytest.fixture(scope="session")
def tiny_model_config(tiny_encoder_dir):
    from fakenews_ml.config import ModelConfig

    return ModelConfig(encoder=str(tiny_encoder_dir), max_length=32)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_config):
    from fakenews_ml.model.encoder import load_tokenizer

    return load_tokenizer(tiny_model_config)


TINY_TRAIN = {
    "max_steps": 10,
    "epochs": 1,
    "batch_size": 8,
    "progress_bar": False,
    "precision": "32-true",
    "accelerator": "cpu",
}


@pytest.fixture(scope="session")
def tiny_training(tmp_path_factory, tiny_frames, tiny_model_config, tiny_tokenizer):
    """One short training run of the tiny BERT, written as a bundle (with its held-out table)."""
    from fakenews_ml.config import TrainConfig
    from fakenews_ml.data.tokenize import tokenize_splits
    from fakenews_ml.train import train_model

    root = tmp_path_factory.mktemp("tiny_bundle")
    tokenized = tokenize_splits(tiny_frames, tiny_tokenizer, tiny_model_config.max_length)
    return train_model(
        tokenized,
        tiny_tokenizer,
        tiny_model_config,
        TrainConfig(**TINY_TRAIN),
        root / "bundle",
        lineage={"sources": [{"uri": "synthetic://tiny", "sha256": "0" * 64}]},
        work_dir=root / "work",
        heldout=tiny_frames["test"],
        titles={name: frame["title"].tolist() for name, frame in tiny_frames.items()},  # the default blend
    )


@pytest.fixture(scope="session")
def tiny_bundle(tiny_training) -> Path:
    """Path of the session's tiny trained bundle. Read-only: copy it before changing anything in it."""
    return tiny_training.bundle_path


@pytest.fixture
def tiny_bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A private copy of the tiny bundle that a test may modify (quantize, tamper with, overwrite)."""
    import shutil

    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


# ---------------------------------------------------------------------------------------------------------
# Typed manifests for stage tests: a bundle placed in the artifact store, and splits stored as a stage would.


@pytest.fixture
def store_bundle(fakenews_home):
    """``store_bundle(path, name)`` copies a bundle into this test's artifact store (``models/<name>``) and
    returns its ``TrainedModel`` manifest, read from the bundle's own files."""
    import shutil

    from fakenews_ml.stages.training import bundle_manifest

    def place(path: Path, name: str = "tiny"):
        shutil.copytree(path, fakenews_home / "models" / name)
        return bundle_manifest(f"models/{name}")

    return place


@pytest.fixture
def store_splits(fakenews_home):
    """``store_splits(frames)`` stores train/val/test frames as the split stage would and returns the
    ``NewsSplits`` manifest naming them."""
    from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, frame_digest, save_frame
    from fakenews_ml.manifests import NewsSplits

    def place(frames: dict) -> NewsSplits:
        key = content_key({name: frame_digest(frame) for name, frame in frames.items()})
        location = artifact_location("news_splits", key)

        def build(staging) -> NewsSplits:
            files = {name: save_frame(frame, staging, location, f"{name}.parquet") for name, frame in frames.items()}
            return NewsSplits(
                code_version="test",
                key=key,
                splits=files,
                fingerprint=key,
                duplicates_removed=0,
                conflicting_labels_removed=0,
                empty_titles_removed=0,
                config={},
                validated_digest=key,
                sources=[],
            )

        return cached_or_build(location, NewsSplits, build)

    return place


# ---------------------------------------------------------------------------------------------------------
# A Google Cloud Storage bucket: the gcp-storage-emulator server (with GCS's upload preconditions) on 127.0.0.1.


@dataclass
class Bucket:
    name: str
    emulator_host: str
    uri: str  # gs://<name>/fakenews: the store root the tests use

    def client(self):
        from google.cloud import storage

        return storage.Client(project="emulated")

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        return {blob.name: blob.download_as_bytes() for blob in self.client().list_blobs(self.name, prefix=prefix)}


@pytest.fixture
def gcs_bucket(port_finder, monkeypatch, tmp_path):
    """An emulated bucket, with STORAGE_EMULATOR_HOST pointing the real google-cloud-storage client at it."""
    import subprocess
    import sys
    import time

    port, name = port_finder(), "fakenews-test"
    log = open(tmp_path / "gcs_emulator.log", "w")  # noqa: SIM115 - the server writes to it until the fixture ends
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("gcs_emulator.py")), str(port), name],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the GCS emulator did not start: {(tmp_path / 'gcs_emulator.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        host = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
        monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
        yield Bucket(name, host, f"gs://{name}/fakenews")
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


# ---------------------------------------------------------------------------------------------------------
# Services the deployment tests use: PostgreSQL, Redis and RabbitMQ on this machine (CI runs them too). Each
# address comes from an environment variable with the machine's default. An unreachable service skips the
# test with the reason, except under CI=true, where it fails: a silent skip in CI would hide the feature.

POSTGRES_ENV, POSTGRES_DEFAULT = "FAKENEWS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_ENV, REDIS_DEFAULT = "FAKENEWS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
RABBITMQ_ENV, RABBITMQ_DEFAULT = "FAKENEWS_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"


def service_unavailable(what: str, reason: str) -> None:
    """Skip (fail under CI=true) because ``what`` cannot be used: ``reason`` says why and how to start it."""
    message = f"{what} unavailable: {reason}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message} (CI=true: the services must run)", pytrace=False)
    pytest.skip(message)


def _probe(url: str, env: str, default_port: int, hello: bytes | None, expect: bytes) -> str:
    """``url`` if a server there answers ``hello`` with bytes starting with ``expect``; else skip/fail."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.settimeout(3)
            if hello:
                sock.sendall(hello)
            answer = sock.recv(64)
    except OSError as exc:
        service_unavailable(f"{parts.scheme} at {host}:{port} (${env})", f"{exc}; see DESIGN.md to start it")
    if not answer.startswith(expect):
        service_unavailable(f"{parts.scheme} at {host}:{port} (${env})", f"unexpected answer {answer[:16]!r}")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis server that answers PING (``FAKENEWS_TEST_REDIS_URL``, default 127.0.0.1:6379)."""
    return _probe(os.environ.get(REDIS_ENV) or REDIS_DEFAULT, REDIS_ENV, 6379, b"PING\r\n", b"+PONG")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """A RabbitMQ broker that answers the AMQP 0-9-1 greeting with a method frame (connection.start)."""
    return _probe(
        os.environ.get(RABBITMQ_ENV) or RABBITMQ_DEFAULT, RABBITMQ_ENV, 5672, b"AMQP\x00\x00\x09\x01", b"\x01"
    )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The SQLAlchemy URL of a PostgreSQL database this suite may create databases from
    (``FAKENEWS_TEST_POSTGRES_URL``, default: user postgres, database test on 127.0.0.1:5432)."""
    import sqlalchemy

    url = os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
    except Exception as exc:  # refused, auth, no such database: the same answer, with the reason
        service_unavailable(
            f"PostgreSQL at {engine.url.render_as_string(hide_password=True)} (${POSTGRES_ENV})",
            str(exc).splitlines()[0],
        )
    finally:
        engine.dispose()
    return url


@dataclass
class PostgresDatabases:
    """Creates empty databases on the test server and drops them again."""

    server_url: str
    created: list[str] = field(default_factory=list)

    def _admin(self):
        import sqlalchemy

        return sqlalchemy.create_engine(self.server_url, isolation_level="AUTOCOMMIT")

    def create(self, label: str = "db") -> str:
        """The URL of a new database ``fakenews_test_<label>_<pid>_<random>``."""
        import uuid

        import sqlalchemy
        from sqlalchemy.engine import make_url

        name = f"fakenews_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        self.created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, *names: str) -> None:
        """Drop databases (all created ones by default); connections still open are closed (FORCE)."""
        import sqlalchemy

        engine = self._admin()
        with engine.connect() as conn:
            for name in names or list(self.created):
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                self.created.remove(name)
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_databases(postgres_server) -> PostgresDatabases:
    """Fresh databases on the test server (``.create(label)`` gives a URL); whatever a test leaves is
    dropped when the session ends."""
    databases = PostgresDatabases(postgres_server)
    yield databases
    databases.drop()


@pytest.fixture
def postgres_url(postgres_databases) -> str:
    """A fresh, empty PostgreSQL database for one test, dropped after it."""
    from sqlalchemy.engine import make_url

    url = postgres_databases.create("t")
    yield url
    postgres_databases.drop(make_url(url).database)
