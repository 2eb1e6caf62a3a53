"""W&B for real, offline: a bundle is a version of the ``trained_model`` model artifact holding its files (with
its metrics and lineage as metadata), and promotions put the ``champion`` alias on it. Everything is read back
from the offline run directories, with wandb's own record reader, as ``wandb sync`` would publish it."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from fakenews_ml.tracking import (
    CHAMPION_ALIAS,
    MODEL_ARTIFACT,
    PROMOTION_JOB,
    RUN_FILE,
    TrainingRun,
    WandbSettings,
    artifact_files,
    mirror_promotion,
)
from fakenews_ml.wandb_offline import finished_offline_runs

pytestmark = pytest.mark.slow  # each W&B run starts wandb's service: about a second


def _md5(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


@pytest.fixture
def offline(monkeypatch) -> WandbSettings:
    monkeypatch.setenv("WANDB_MODE", "offline")
    return WandbSettings(mode="offline")


def _log_training(settings: WandbSettings, trained, path: Path, aliases=()) -> dict:
    run = TrainingRun(settings, {"bundle": trained.bundle}, aliases=aliases)
    run.start(trained.cache_key)
    return run.finish(trained, path)


def _other_bundle(source: Path, target: Path) -> Path:
    """A second bundle: the same model with other metrics, so other files and another artifact digest."""
    shutil.copytree(source, target)
    metrics = json.loads((target / "metrics.json").read_text())
    metrics["note"] = "another bundle"
    (target / "metrics.json").write_text(json.dumps(metrics))
    return target


def test_a_bundle_is_a_model_artifact_holding_its_files_metrics_and_lineage(
    tiny_bundle, store_bundle, fakenews_home, offline
):
    trained = store_bundle(tiny_bundle, "a")
    path = fakenews_home / trained.bundle
    (path / "variants").mkdir()  # what quantization adds later is not part of the trained bundle's artifact
    (path / "variants" / "int8.bin").write_bytes(b"later")

    info = _log_training(offline, trained, path, aliases=("dagster-run-0123abcd",))

    (run,) = finished_offline_runs(fakenews_home / "wandb")
    assert run.id == info["id"] and run.job_type == "train"
    (artifact,) = run.artifacts
    assert (artifact.name, artifact.type) == (MODEL_ARTIFACT, "model")
    assert {"dagster-run-0123abcd", "latest"} <= set(artifact.aliases)
    # the files themselves (W&B uploads them from these paths on sync), never a reference to a folder
    expected = artifact_files(path)
    assert set(artifact.files) == set(expected)
    assert {"model.safetensors", "bundle.json", "metrics.json", "lineage.json", "tokenizer/tokenizer.json"} <= set(
        artifact.files
    )
    assert not any(name.startswith("variants/") or name == RUN_FILE for name in artifact.files)
    for name, entry in artifact.files.items():
        assert Path(entry.local_path) == path / name
        assert entry.digest == _md5(path / name) and entry.size == (path / name).stat().st_size
    # its metrics and lineage as metadata
    assert artifact.metadata["metrics"] == json.loads((path / "metrics.json").read_text())
    assert artifact.metadata["lineage"] == json.loads((path / "lineage.json").read_text())
    assert artifact.metadata["version"] == trained.version
    # the bundle remembers what was logged (the promotion logs the same files again)
    recorded = json.loads((path / RUN_FILE).read_text())
    assert recorded["artifact"]["digest"] == artifact.digest and recorded["artifact"]["files"] == expected
    assert run.summary["bundle_version"] == trained.version


def test_promotions_move_the_champion_alias_and_a_rollback_moves_it_back(
    tiny_bundle, store_bundle, fakenews_home, offline
):
    a = store_bundle(tiny_bundle, "a")
    b = store_bundle(_other_bundle(tiny_bundle, fakenews_home.parent / "b"), "b")
    path_a, path_b = fakenews_home / a.bundle, fakenews_home / b.bundle
    digest = {
        "a": _log_training(offline, a, path_a)["artifact"]["digest"],
        "b": _log_training(offline, b, path_b)["artifact"]["digest"],
    }
    assert digest["a"] != digest["b"]

    first = mirror_promotion(offline, path_a, previous=None, reason="first champion")
    second = mirror_promotion(offline, path_b, previous=a.bundle, reason="better macro-F1")
    rollback = mirror_promotion(offline, path_a, previous=b.bundle, reason="rollback")
    assert first["same_version_as_training"] and second["same_version_as_training"]

    runs = finished_offline_runs(fakenews_home / "wandb")
    promotions = [run for run in runs if run.job_type == PROMOTION_JOB]
    assert [run.id for run in promotions] == [first["id"], second["id"], rollback["id"]]
    champions = []
    for run in promotions:
        (artifact,) = run.artifacts
        assert artifact.name == MODEL_ARTIFACT and CHAMPION_ALIAS in artifact.aliases
        champions.append(artifact.digest)
    # same files as at training: the alias lands on the version logged then, A -> B -> back to A; B stays a version
    assert champions == [digest["a"], digest["b"], digest["a"]]
    assert promotions[1].artifacts[0].metadata["promotion"] == {"previous": a.bundle, "reason": "better macro-F1"}
    trained_versions = {run.artifacts[0].digest for run in runs if run.job_type == "train"}
    assert trained_versions == {digest["a"], digest["b"]}


def test_a_bundle_trained_without_wandb_is_still_logged_whole_when_promoted(
    tiny_bundle, store_bundle, fakenews_home, offline
):
    trained = store_bundle(tiny_bundle, "plain")
    path = fakenews_home / trained.bundle
    assert not (path / RUN_FILE).exists()
    mirrored = mirror_promotion(offline, path)
    (run,) = finished_offline_runs(fakenews_home / "wandb")
    (artifact,) = run.artifacts
    assert mirrored["same_version_as_training"] is None and artifact.digest == mirrored["digest"]
    assert set(artifact.files) == set(artifact_files(path)) and "model.safetensors" in artifact.files


def test_nothing_is_logged_when_wandb_is_disabled(tiny_bundle, store_bundle, fakenews_home):
    trained = store_bundle(tiny_bundle, "off")
    assert mirror_promotion(WandbSettings(mode="disabled"), fakenews_home / trained.bundle) == {}
    assert not (fakenews_home / "wandb").exists()
