"""End to end with the real packaged all-MiniLM-L6-v2: a few training steps on a real sample, the bundle
round trip, and predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fakenews_ml.bundle import load_bundle, read_meta
from fakenews_ml.config import DataConfig, ModelConfig, PipelineConfig, TrainConfig
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.environment import artifact_store
from fakenews_ml.model.encoder import DEFAULT_ENCODER_NAME
from fakenews_ml.predict import Predictor
from fakenews_ml.stages.lifecycle import train_from_sources

HEADLINES = [
    "Senate passes bipartisan infrastructure bill after months of negotiation",
    "SHOCKING: Celebrity reveals the one secret doctors don't want you to know",
    "Federal Reserve holds interest rates steady",
    "You won't believe what this politician said about aliens",
]


@pytest.mark.slow
def test_real_minilm_train_round_trip_and_predict(datasets_dir):
    source = datasets_dir / "fakenewsnet_titles.csv"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    config = PipelineConfig(
        data=DataConfig(sources=[str(source)], max_rows=400),
        model=ModelConfig(),  # the packaged encoder, loaded offline
        train=TrainConfig(max_steps=15, batch_size=16, progress_bar=False),
    )
    result = train_from_sources(config)
    assert result.training.steps == 15 and not result.reused
    assert result.training.precision in ("32-true", "bf16-mixed")
    assert 0.0 <= result.threshold <= 1.0
    bundle_path = artifact_store().path(result.bundle)

    bundle = load_bundle(bundle_path)
    assert bundle.model.encoder.config.hidden_size == 384 and bundle.model.encoder.config.num_hidden_layers == 6
    assert bundle.lineage["encoder"] == DEFAULT_ENCODER_NAME
    assert bundle.lineage["sources"] == [{"uri": str(source), "sha256": sha256_file(source)}]
    splits = bundle.lineage["splits"]
    assert sum(s["rows"] for s in splits.values()) == 400
    heldout = pd.read_csv(bundle_path / "heldout_test.csv", dtype={"title": str}, keep_default_na=False)
    assert len(heldout) == splits["test"]["rows"] and set(heldout["label"]) == {0, 1}
    metrics = json.loads((bundle_path / "metrics.json").read_text())
    assert metrics["test"]["n"] == splits["test"]["rows"]
    assert 0.0 <= metrics["test"]["roc_auc"] <= 1.0

    predictor = Predictor.from_path(bundle_path, "auto")
    frame = predictor.predict(HEADLINES)
    assert frame["prob_fake"].between(0.0, 1.0).all()
    assert frame["label"].tolist() == (frame["prob_fake"] >= bundle.threshold).astype(int).tolist()
    # the reloaded bundle reproduces the trained model's own test predictions: compare with the
    # metrics the training run computed in memory before saving
    from fakenews_ml.metrics import compute_metrics

    test_probs = predictor.predict_proba(heldout["title"].astype(str).tolist())
    recomputed = compute_metrics(heldout["label"].to_numpy(), test_probs, bundle.threshold)
    assert recomputed["roc_auc"] == pytest.approx(metrics["test"]["roc_auc"], abs=1e-3)
    assert recomputed["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1.01 / len(heldout))
    assert read_meta(bundle_path)["model_config"]["encoder"] is None
    assert np.isfinite(test_probs).all()
