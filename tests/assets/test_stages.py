"""The core functions the assets call (fakenews_ml.artifacts and fakenews_ml.stages), without Dagster."""

from __future__ import annotations

import pytest

from fakenews_ml.artifacts import (
    artifact_dir,
    content_key,
    read_manifest,
    staged_artifact,
    write_manifest,
)
from fakenews_ml.config import GateConfig, ModelConfig, TrainConfig
from fakenews_ml.stages.deployment import decide_gate
from fakenews_ml.stages.training import model_config_for, training_key


def test_content_key_is_stable_and_order_free():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert len(content_key("x")) == 16


def test_a_crash_while_staging_leaves_no_artifact(fakenews_home):
    target = artifact_dir("demo", "k1")
    with pytest.raises(RuntimeError, match="boom"), staged_artifact(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert not list(target.parent.glob(".*partial*"))

    with staged_artifact(target) as staging:
        (staging / "data.txt").write_text("whole")
        write_manifest(staging, {"path": str(target / "data.txt")})
    assert read_manifest(target) == {"path": str(target / "data.txt")}
    assert (target / "data.txt").read_text() == "whole"


def test_staging_without_a_manifest_is_an_error(fakenews_home):
    with pytest.raises(RuntimeError, match="manifest"), staged_artifact(artifact_dir("demo", "k2")) as staging:
        (staging / "data.txt").write_text("no manifest")
    assert not artifact_dir("demo", "k2").exists()


TOKENS = {"fingerprint": "abc", "encoder": "enc", "max_length": 24}


def test_training_key_changes_with_what_changes_the_weights():
    model = model_config_for(TOKENS)
    base = TrainConfig(precision="32-true", accelerator="cpu")
    key = training_key(TOKENS, model, base, "1")
    assert key == training_key(TOKENS, model, base.model_copy(update={"progress_bar": False, "num_threads": 1}), "1")
    assert key != training_key(TOKENS, model, base.model_copy(update={"learning_rate": 1e-4}), "1")
    assert key != training_key({**TOKENS, "fingerprint": "abd"}, model, base, "1")
    assert key != training_key(TOKENS, model, base, "2")
    assert key != training_key(TOKENS, ModelConfig(encoder="enc", max_length=24, dropout=0.2), base, "1")


def test_gate_decisions():
    gate = GateConfig(metric="macro_f1", tolerance=0.0)
    assert decide_gate({"macro_f1": 0.7}, None, gate)["passed"]
    assert decide_gate({"macro_f1": 0.7}, {"macro_f1": 0.7}, gate)["passed"]
    worse = decide_gate({"macro_f1": 0.69}, {"macro_f1": 0.7}, gate)
    assert not worse["passed"] and "worse than" in worse["reason"] and worse["margin"] == pytest.approx(-0.01)
    assert decide_gate({"macro_f1": 0.69}, {"macro_f1": 0.7}, GateConfig(tolerance=0.02))["passed"]
    assert not decide_gate({"roc_auc": None}, {"roc_auc": 0.8}, GateConfig(metric="roc_auc"))["passed"]
