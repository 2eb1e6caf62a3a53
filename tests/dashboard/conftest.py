"""Fixtures for the dashboard tests: one FAKENEWS_HOME shared by all dashboard tests, holding

* a real tiny model bundle (2-layer random BERT + the packaged tokenizer, trained for 3 steps on 40
  synthetic headlines), quantized to int8 and promoted to champion, plus an older-looking challenger;
* a real SQLite prediction log with traffic from several origins and model versions, and feedback;
* two daily drift reports written by the real ``compute_drift`` (Evidently), one calm and one drifted.

Source URIs in the bundle's lineage deliberately carry an absolute local path and a signed URL, so that
the tests can check that neither reaches a page.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
SECRET_DIR = "/srv/private-data/team-secret"
SIGNED_QUERY = "X-Goog-Signature=deadbeef"
WANDB_URL = "https://wandb.ai/newsroom/fakenews/runs/abc123"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _train_champion(encoder: Path, models: Path, work: Path, make_news_frame) -> Path:
    from fakenews_ml.config import ModelConfig, QuantizeConfig, TrainConfig
    from fakenews_ml.data.tokenize import tokenize_splits
    from fakenews_ml.model.encoder import load_tokenizer
    from fakenews_ml.quantize import quantize_bundle
    from fakenews_ml.train import train_model

    frames = {
        "train": make_news_frame(40, seed=21),
        "val": make_news_frame(16, seed=22),
        "test": make_news_frame(16, seed=23),
    }
    model_config = ModelConfig(encoder=str(encoder), max_length=32)
    tokenizer = load_tokenizer(model_config)
    tokenized = tokenize_splits(frames, tokenizer, model_config.max_length)
    lineage = {
        "sources": [
            {"uri": f"{SECRET_DIR}/fakenewsnet_titles.csv", "sha256": "1" * 64},
            {"uri": f"https://storage.googleapis.com/bucket/welfake.csv?{SIGNED_QUERY}", "sha256": "2" * 64},
        ],
        "wandb": {"url": WANDB_URL, "id": "abc123"},
    }
    result = train_model(
        tokenized,
        tokenizer,
        model_config,
        TrainConfig(max_steps=3, epochs=1, batch_size=8, progress_bar=False, precision="32-true", accelerator="cpu"),
        models / "champion-bundle",
        lineage=lineage,
        work_dir=work,
        heldout=frames["test"],
    )
    quantize_bundle(
        result.bundle_path, frames["test"], QuantizeConfig(variants=["int8"], max_accuracy_drop=1.0, min_agreement=0.0)
    )
    return result.bundle_path


def _challenger(encoder: Path, models: Path) -> Path:
    import torch

    from fakenews_ml.bundle import save_bundle
    from fakenews_ml.config import ModelConfig
    from fakenews_ml.model.classifier import HeadlineClassifier
    from fakenews_ml.model.encoder import load_tokenizer

    config = ModelConfig(encoder=str(encoder), max_length=32)
    torch.manual_seed(7)
    model = HeadlineClassifier.from_pretrained(config).eval()
    return save_bundle(
        models / "challenger-bundle",
        model,
        load_tokenizer(config),
        model.encoder.config,
        config,
        threshold=0.5,
        metrics={"test": {"macro_f1": 0.41, "accuracy": 0.5}},
        lineage={"sources": [{"uri": "covid_posts.csv"}]},
    )


def _log_traffic(champion_version: str) -> dict:
    from fakenews_ml.monitoring.prediction_log import PredictionLog

    rng = np.random.default_rng(5)
    now = datetime.now(UTC)
    rows = []
    for i in range(80):
        older = i < 30
        prob = float(rng.beta(2, 5) if older else rng.beta(4, 3))
        rows.append(
            {
                "request_id": f"seed-{i // 4}",
                "created_at": now - timedelta(hours=20) + timedelta(minutes=15 * i),
                "title": f"Seeded headline number {i}",
                "prob_fake": prob,
                "label": int(prob >= 0.5),
                "model_version": "20240101-000000-oldmodel" if older else champion_version,
                "origin": ("api", "simulator")[i % 2],
            }
        )
    with PredictionLog() as log:
        ids = log.log_predictions(rows)
        log.add_feedback([{"prediction_id": ids[0], "label": 1}, {"prediction_id": ids[1], "label": 0}], source="api")
    return {"n": len(rows), "ids": ids}


def _drift_reports(model_version: str) -> dict:
    from fakenews_ml.config import DriftConfig
    from fakenews_ml.monitoring.drift import compute_drift
    from fakenews_ml.monitoring.drift_store import report_dir
    from fakenews_ml.monitoring.reference import feature_frame

    rng = np.random.default_rng(3)
    calm_words = [
        "senate",
        "vote",
        "court",
        "report",
        "city",
        "council",
        "budget",
        "minister",
        "election",
        "judge",
        "market",
    ]
    covid_words = [
        "covid",
        "vaccine",
        "lockdown",
        "masks",
        "cases",
        "pandemic",
        "virus",
        "quarantine",
        "outbreak",
        "hospital",
    ]

    def frame(n: int, shifted: bool):
        words = covid_words if shifted else calm_words
        titles = [
            " ".join(rng.choice(words, size=int(rng.integers(*((18, 30) if shifted else (5, 10)))))) for _ in range(n)
        ]
        prob = rng.beta(5, 2, n) if shifted else rng.beta(2, 5, n)
        emb = rng.normal(0.8 if shifted else 0.0, 1.0, (n, 8))
        features = feature_frame(titles, prob, (prob >= 0.5).astype(int), emb)
        features.attrs["model_version"] = model_version
        return features

    # loose per-feature thresholds: 60-row windows are noisy, and the calm day must pass
    config = DriftConfig(
        min_current_rows=40,
        min_reference_rows=60,
        embedding_folds=3,
        embedding_pca_components=None,
        num_threshold=0.4,
        cat_threshold=0.2,
        text_threshold=0.7,
    )
    reference = frame(120, False)
    today = datetime.now(UTC).date()
    days = {"calm": str(today - timedelta(days=1)), "drifted": str(today)}
    results = {
        "calm": compute_drift(reference, frame(60, False), config, report_dir(days["calm"])),
        "drifted": compute_drift(reference, frame(60, True), config, report_dir(days["drifted"])),
    }
    return {"days": days, "results": results}


@pytest.fixture(scope="session")
def dashboard_home(tmp_path_factory, news_frame_factory, tiny_encoder_dir):
    """The shared FAKENEWS_HOME described in the module docstring (built once per session)."""
    from fakenews_ml.bundle import read_meta
    from fakenews_ml.registry import promote

    root = tmp_path_factory.mktemp("dashboard")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAKENEWS_HOME", str(home))
        mp.delenv("FAKENEWS_PREDICTION_LOG_URL", raising=False)
        encoder = tiny_encoder_dir
        models = home / "models"
        champion = _train_champion(encoder, models, root / "work", news_frame_factory)
        challenger = _challenger(encoder, models)
        promote(champion, reason="test: first champion")
        version = read_meta(champion)["version"]
        traffic = _log_traffic(version)
        drift = _drift_reports(version)
    return {
        "home": home,
        "champion": champion,
        "challenger": challenger,
        "version": version,
        "challenger_version": read_meta(challenger)["version"],
        "traffic": traffic,
        "drift": drift,
    }


@pytest.fixture(autouse=True)
def fakenews_home(dashboard_home, monkeypatch) -> Path:
    """Overrides the per-test home of tests/conftest.py: every dashboard test reads the shared one."""
    monkeypatch.setenv("FAKENEWS_HOME", str(dashboard_home["home"]))
    monkeypatch.delenv("FAKENEWS_PREDICTION_LOG_URL", raising=False)
    return dashboard_home["home"]


@pytest.fixture(autouse=True)
def no_dagster(monkeypatch, port_finder):
    """No test talks to a Dagster webserver by accident: a closed local port unless a test says otherwise."""
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", f"http://127.0.0.1:{port_finder()}")
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Path:
    """A FAKENEWS_HOME with nothing in it: no model, no log, no reports."""
    home = tmp_path / "empty_home"
    home.mkdir()
    monkeypatch.setenv("FAKENEWS_HOME", str(home))
    return home


def app_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update({"FAKENEWS_HOME": str(home), "NO_PROXY": "127.0.0.1,localhost", **extra})
    env.pop("FAKENEWS_PREDICTION_LOG_URL", None)
    return env
