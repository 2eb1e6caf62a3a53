"""The core functions the assets call (fakenews_ml.artifacts, fakenews_ml.code_versions, fakenews_ml.stages),
without Dagster."""

from __future__ import annotations

import shutil

import pytest

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, read_manifest, staged_artifact
from fakenews_ml.code_versions import PACKAGE_ROOT, code_version, compute_code_version, module_closure
from fakenews_ml.config import GateConfig, ModelConfig, TrainConfig
from fakenews_ml.manifests import Metrics, NewsSplits, TokenizedNews, dump_manifest, load_manifest
from fakenews_ml.stages import training as training_stage
from fakenews_ml.stages.evaluation import decide_gate
from fakenews_ml.stages.training import model_config_for, training_key

STAGES = (
    "ingest",
    "feedback",
    "validation",
    "splitting",
    "tokenizing",
    "training",
    "evaluation",
    "quantization",
    "promotion",
    "profile",
    "monitoring",
)


def test_content_key_is_stable_and_order_free():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert len(content_key("x")) == 16


def _tokens(**change) -> TokenizedNews:
    values = {
        "code_version": "t",
        "key": "abc",
        "fingerprint": "abc",
        "splits": {},
        "encoder": "enc",
        "encoder_label": "enc",
        "max_length": 24,
        "tokenizer_digest": "d",
        "vocab_size": 10,
        "splits_fingerprint": "s",
    }
    return TokenizedNews(**{**values, **change})


def test_a_crash_while_staging_leaves_no_artifact(fakenews_home):
    location = artifact_location("demo", "k1")
    with pytest.raises(RuntimeError, match="boom"), staged_artifact(location) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert not (fakenews_home / location).exists()
    assert not list((fakenews_home / location).parent.glob(".*partial*"))

    built = cached_or_build(location, TokenizedNews, lambda staging: _tokens())
    assert read_manifest(location, TokenizedNews) == built
    calls = []
    again = cached_or_build(location, TokenizedNews, lambda staging: calls.append(1) or _tokens(key="other"))
    assert again == built and calls == []  # the folder exists: reused, never rebuilt
    assert read_manifest(location, NewsSplits) is None  # a manifest of another kind reads as absent


def test_staging_without_a_manifest_is_an_error(fakenews_home):
    with pytest.raises(RuntimeError, match="manifest"), staged_artifact(artifact_location("demo", "k2")) as staging:
        (staging / "data.txt").write_text("no manifest")
    assert not (fakenews_home / artifact_location("demo", "k2")).exists()


def test_manifests_round_trip_as_json_and_refuse_absolute_locations():
    tokens = _tokens()
    assert load_manifest(dump_manifest(tokens)) == tokens
    with pytest.raises(ValueError, match="relative"):
        _tokens(
            splits={
                "train": {
                    "location": "/home/alice/fakenews/train.npz",
                    "rows": 1,
                    "mean_tokens": 1.0,
                    "max_tokens": 1,
                    "truncated_share": 0.0,
                }
            }
        )
    with pytest.raises(ValueError, match="relative"):
        _tokens(
            splits={
                "train": {
                    "location": "assets/../../etc/passwd",
                    "rows": 1,
                    "mean_tokens": 1.0,
                    "max_tokens": 1,
                    "truncated_share": 0.0,
                }
            }
        )


# ----- code versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_a_code_version_from_its_code(stage):
    module = f"fakenews_ml.stages.{stage}"
    version = code_version(module)
    assert len(version) == 12 and version != code_version("fakenews_ml.stages.lifecycle")
    assert module in module_closure(module)
    assert "fakenews_ml.config" not in module_closure(module)  # values, keyed separately


def test_training_code_closure_holds_the_model_code_and_not_the_data_checks():
    closure = module_closure("fakenews_ml.stages.training")
    assert {"fakenews_ml.train", "fakenews_ml.model.lexical", "fakenews_ml.model.lightning_module"} <= closure.keys()
    assert "fakenews_ml.data.validation" not in closure and "fakenews_ml.stages.validation" not in closure


def test_the_version_changes_with_a_dependency_and_not_with_its_comments(tmp_path):
    tree = tmp_path / "src"
    shutil.copytree(PACKAGE_ROOT / "fakenews_ml", tree / "fakenews_ml", ignore=shutil.ignore_patterns("__pycache__"))
    module = "fakenews_ml.stages.training"
    before = compute_code_version(module, tree)
    assert before == code_version(module)  # the copy is the same code

    lexical = tree / "fakenews_ml" / "model" / "lexical.py"  # a module training reaches only through train.py
    lexical.write_text(lexical.read_text() + "\n# a comment changes nothing the code does\n")
    assert compute_code_version(module, tree) == before
    lexical.write_text(lexical.read_text() + "\nBLOCK_WEIGHT = 2.0\n")
    after = compute_code_version(module, tree)
    assert after != before
    assert compute_code_version("fakenews_ml.stages.ingest", tree) == code_version("fakenews_ml.stages.ingest")


def test_training_key_changes_with_what_changes_the_weights(monkeypatch):
    tokens = _tokens()
    model = model_config_for(tokens)
    base = TrainConfig(precision="32-true", accelerator="cpu")
    key = training_key(tokens, model, base)
    assert key == training_key(tokens, model, base.model_copy(update={"progress_bar": False, "num_threads": 1}))
    assert key != training_key(tokens, model, base.model_copy(update={"learning_rate": 1e-4}))
    assert key != training_key(_tokens(fingerprint="abd"), model, base)
    assert key != training_key(tokens, ModelConfig(encoder="enc", max_length=24, dropout=0.2), base)
    monkeypatch.setattr(training_stage, "CODE_VERSION", "changed-code")
    assert key != training_key(tokens, model, base)  # new training code: a cache miss


def test_gate_decisions():
    def metrics(**values):
        base = {
            "accuracy": 0.8,
            "macro_f1": 0.7,
            "f1_fake": 0.6,
            "precision_fake": 0.6,
            "recall_fake": 0.6,
            "roc_auc": 0.8,
            "pr_auc": 0.7,
            "ece": 0.05,
            "brier": 0.1,
            "confusion_matrix": [[1, 0], [0, 1]],
            "n": 2,
            "fake_rate": 0.5,
            "threshold": 0.5,
        }
        return Metrics(**{**base, **values})

    gate = GateConfig(metric="macro_f1", tolerance=0.0)
    assert decide_gate(metrics(), None, gate).passed
    assert decide_gate(metrics(), metrics(), gate).passed
    worse = decide_gate(metrics(macro_f1=0.69), metrics(), gate)
    assert not worse.passed and "worse than" in worse.reason and worse.margin == pytest.approx(-0.01)
    assert decide_gate(metrics(macro_f1=0.69), metrics(), GateConfig(tolerance=0.02)).passed
    assert not decide_gate(metrics(roc_auc=None), metrics(), GateConfig(metric="roc_auc")).passed
