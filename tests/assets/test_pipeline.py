"""The asset graph materialized in-process on tiny data: what every asset writes, that an unchanged graph
does not retrain, and that each blocking check stops the graph on bad input (with the champion untouched)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file, save_file

from fakenews_ml.config import GateConfig
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.errors import PromotionRefused
from fakenews_ml.monitoring.reference import load_profile
from fakenews_ml.stages import evaluation as evaluation_stage
from fakenews_ml.stages import profile as profile_stage
from fakenews_ml.stages import quantization as quantization_stage
from fakenews_ml.stages import training as training_stage
from fakenews_ml.stages.promotion import promote_challenger
from fakenews_ml.stages.training import bundle_manifest

from .conftest import (
    ASSET_NAMES,
    CHECKS,
    WORSE_TRAINING,
    champion_state,
    clone_store,
    copy_bundle,
    materialize,
    only_ops,
    read_manifests,
    read_manifests_from,
    run_config,
    stage_manifests,
)
from .data import news_frame, write_news_csv

DOWNSTREAM_OF_VALIDATED = {
    "news_splits",
    "tokenized_news",
    "trained_model",
    "model_evaluation",
    "quantized_model",
    "production_model",
    "reference_profile",
}


def test_first_run_materializes_every_asset_and_promotes(promoted_home):
    run, home = promoted_home.run, promoted_home.home
    assert run.materialized == set(ASSET_NAMES)
    assert run.checks == dict.fromkeys(CHECKS, True)
    manifests = promoted_home.manifests
    assert set(manifests) == set(ASSET_NAMES)

    raw = manifests["raw_news"]
    assert raw.news.rows == 300 and (home / raw.news.location).is_file()
    assert raw.sources[0].sha256 == sha256_file(promoted_home.sources)
    assert raw.news.location == f"assets/raw_news/{raw.key}/news.parquet"

    splits = manifests["news_splits"].splits
    frames = {name: pd.read_parquet(home / info.location) for name, info in splits.items()}
    assert sum(len(f) for f in frames.values()) == 300
    assert not set(frames["train"]["id"]) & set(frames["test"]["id"])
    tokenized = manifests["tokenized_news"]
    assert all(
        info.location.endswith(".npz") and info.rows == splits[name].rows for name, info in tokenized.splits.items()
    )

    trained = manifests["trained_model"]
    bundle = home / trained.bundle
    assert trained.bundle == f"models/{trained.cache_key}"
    assert {"model.safetensors", "bundle.json", "lineage.json", "metrics.json", "heldout_test.csv"} <= {
        p.name for p in bundle.iterdir()
    }
    lineage = json.loads((bundle / "lineage.json").read_text())
    assert lineage["cache_key"] == trained.cache_key and lineage["code_version"] == trained.code_version
    assert lineage["sources"] == [s.model_dump() for s in raw.sources]  # the data it learned from, with checksums
    assert lineage["feedback"]["rows"] == 0 and lineage["parent"] is None  # nothing merged, no champion before
    assert trained.reused is False
    assert trained.metrics.test.macro_f1 > 0.9  # the synthetic signal was learned

    quantized = manifests["quantized_model"]
    assert set(quantized.variants) == {"int8", "bf16"} and quantized.passed and quantized.all_passed
    assert (bundle / "quantization.json").is_file() and (bundle / "variants" / "int8" / "model.safetensors").is_file()

    evaluation = manifests["model_evaluation"]
    assert evaluation.champion is None and evaluation.gate.passed
    assert evaluation.test_rows == splits["test"].rows

    production = manifests["production_model"]
    target, history = champion_state(home)
    assert production.promoted and target == str(bundle) and production.champion == trained.bundle
    assert len(history) == 1 and json.loads(history[0])["version"] == trained.version
    assert json.loads(history[0])["location"] == trained.bundle

    profile = manifests["reference_profile"]
    frame = load_profile(home / profile.folder)  # the drift monitor's own reader
    embeddings = np.load(home / profile.folder / "embeddings.npy")
    n = min(40, len(frames["val"]))  # the profile samples the val split: rows the model never fitted
    assert len(frame) == n and embeddings.shape == (n, 32)
    assert frame["prob_fake"].between(0, 1).all() and set(frame["title"]) <= set(frames["val"]["title"])
    assert profile.model.serving == production.serving and profile.split == "val"
    assert profile.model.version == production.version  # the champion's one version, its variant beside it

    # no manifest names the store's place on this machine (only what the user configured: sources, encoder)
    for name in ASSET_NAMES:
        text = (home / "dagster" / "manifests" / f"{name}.json").read_text()
        assert str(home) not in text, name

    # metadata the UI shows
    meta = run.metadata
    assert meta["raw_news"]["dagster/row_count"] == 300
    assert {r.data["title"] for r in meta["raw_news"]["sample"].records} <= set(frames["train"]["title"]) | set(
        frames["val"]["title"]
    ) | set(frames["test"]["title"])
    assert meta["trained_model"]["reused"] is False
    assert meta["trained_model"]["plots"].count("data:image/png;base64,") == 3
    assert meta["trained_model"]["compute"]["precision"] == "32-true"
    assert meta["trained_model"]["bundle"] == trained.bundle
    assert meta["trained_model"]["code_version"] == trained.code_version
    assert meta["model_evaluation"]["gate_passed"] is True
    assert meta["quantized_model"]["int8_smoothing"] == {"alpha": 0.8, "calibration_rows": len(frames["train"])}
    assert meta["production_model"]["promoted"] is True
    assert run.check_metadata["news_quality_suite"]["rows"] == 300


def test_unchanged_second_run_reuses_everything_without_training(promoted_home, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("nothing changed: this must not run again")

    monkeypatch.setattr(training_stage, "train_model", must_not_run)
    monkeypatch.setattr(quantization_stage, "quantize_bundle", must_not_run)
    monkeypatch.setattr(evaluation_stage, "evaluate_predictor", must_not_run)  # scores are kept per (model, split)
    monkeypatch.setattr(profile_stage, "Predictor", must_not_run)
    before = champion_state(promoted_home.home)
    bundle = promoted_home.home / promoted_home.manifests["trained_model"].bundle
    weights_mtime = (bundle / "model.safetensors").stat().st_mtime_ns

    run = materialize(promoted_home.home, promoted_home.sources, promoted_home.config)

    assert run.result.success, run.failed_steps
    assert run.materialized == set(ASSET_NAMES) and all(run.checks.values())
    assert run.metadata["trained_model"]["reused"] is True
    assert run.metadata["quantized_model"]["reused"] is True
    assert run.metadata["production_model"]["promoted"] is False
    assert run.metadata["production_model"]["reason"] == "already the champion"
    assert (bundle / "model.safetensors").stat().st_mtime_ns == weights_mtime
    assert champion_state(promoted_home.home) == before


def test_bad_raw_data_stops_at_the_quality_gate(promoted_home, tmp_path):
    before = champion_state(promoted_home.home)
    bad = news_frame(200, seed=7, fake_share=0.35)
    bad["label"] = 1  # every row fake: the class-balance expectation must fail
    bad.to_csv(tmp_path / "bad.csv", index=False)

    run = materialize(promoted_home.home, tmp_path / "bad.csv", promoted_home.config)

    assert not run.result.success
    assert run.checks == {"feedback_quality_suite": True, "news_quality_suite": False}  # no feedback: nothing to judge
    failed = run.check_metadata["news_quality_suite"]["failed_checks"]  # a comma-separated list
    assert "class_balance" in failed
    assert run.materialized == {"raw_news", "feedback_labels", "validated_news"}
    assert not run.materialized & DOWNSTREAM_OF_VALIDATED
    assert champion_state(promoted_home.home) == before


def test_a_source_that_loses_too_many_rows_while_read_stops_the_graph(promoted_home, tmp_path):
    before = champion_state(promoted_home.home)
    frame = news_frame(200, seed=8)
    frame.loc[frame.index[:80], "title"] = ""  # 40% of the rows have no title: dropped while reading
    frame.to_csv(tmp_path / "holes.csv", index=False)

    run = materialize(promoted_home.home, tmp_path / "holes.csv", promoted_home.config)

    assert not run.result.success and run.checks["news_quality_suite"] is False
    assert run.metadata["raw_news"]["rows_dropped"] == 80
    (read,) = run.metadata["raw_news"]["read"].records
    assert (read.data["rows_read"], read.data["rows_kept"], read.data["dropped"]) == (200, 120, "80 empty_title")
    assert "rows_dropped" in run.check_metadata["news_quality_suite"]["failed_checks"]
    severity, description = run.check_descriptions["news_quality_suite"]
    assert "80 of 200 rows dropped (80 empty title)" in description and "5%" in description
    assert not run.materialized & DOWNSTREAM_OF_VALIDATED
    assert champion_state(promoted_home.home) == before


def test_worse_challenger_is_trained_but_not_promoted(promoted_home):
    before = champion_state(promoted_home.home)
    config = run_config(promoted_home.encoder_dir, WORSE_TRAINING)

    run = materialize(promoted_home.home, promoted_home.sources, config)

    assert run.checks["challenger_not_worse"] is False
    assert {"trained_model", "model_evaluation"} <= run.materialized
    assert not run.materialized & {"production_model", "reference_profile"}
    evaluation = read_manifests(promoted_home.home)["model_evaluation"]
    home = promoted_home.home
    assert str(home / evaluation.challenger.bundle) != before[0]  # a new bundle was trained ...
    assert str(home / evaluation.champion.bundle) == before[0]  # ... and compared with the serving champion
    assert evaluation.gate.challenger < evaluation.gate.champion
    assert run.metadata["trained_model"]["reused"] is False
    assert champion_state(promoted_home.home) == before

    # production_model re-verifies the gate itself: even called directly, it refuses
    quantized = read_manifests(promoted_home.home)["quantized_model"].model_copy(update={"passed": True})
    with pytest.raises(PromotionRefused, match="gate failed"):
        promote_challenger(evaluation, quantized)
    assert champion_state(promoted_home.home) == before


def test_promotion_refuses_when_the_champion_changed_since_evaluation(promoted_home):
    """The test's own FAKENEWS_HOME has no champion, unlike the one the evaluation compared with."""
    manifests = promoted_home.manifests
    evaluation = manifests["model_evaluation"]
    evaluation = evaluation.model_copy(
        update={
            "champion": evaluation.challenger.model_copy(update={"bundle": "models/old-champion"}),
            "gate_config": GateConfig(metric="macro_f1", tolerance=1.0),
        }
    )
    quantized = manifests["quantized_model"].model_copy(update={"bundle": evaluation.challenger.bundle, "passed": True})
    with pytest.raises(PromotionRefused, match="champion changed"):
        promote_challenger(evaluation, quantized)


def test_leaking_splits_stop_tokenization(promoted_home, tmp_path):
    home = clone_store(promoted_home.home, tmp_path / "home")
    splits = promoted_home.manifests["news_splits"]
    frames = {name: pd.read_parquet(home / file.location) for name, file in splits.splits.items()}
    near_copies = frames["train"].head(3).assign(title=lambda f: f["title"].str.upper() + "!")
    leaked_test = pd.concat([frames["test"], near_copies], ignore_index=True)
    location = splits.splits["test"].location.replace("test.parquet", "leaked_test.parquet")
    leaked_test.to_parquet(home / location, index=False)
    leaky = splits.model_copy(
        update={"splits": {**splits.splits, "test": splits.splits["test"].model_copy(update={"location": location})}}
    )
    io_dir = stage_manifests(tmp_path / "io", {"news_splits": leaky})

    run = materialize(
        home,
        promoted_home.sources,
        only_ops(promoted_home.config, "tokenized_news"),
        io_dir=io_dir,
        selection=dg.AssetSelection.checks_for_assets("news_splits") | dg.AssetSelection.assets("tokenized_news"),
    )

    assert run.checks == {"splits_do_not_leak": False}
    shared = {r.data["pair"]: r.data["rows"] for r in run.check_metadata["splits_do_not_leak"]["shared_titles"].records}
    assert shared["train&test"] == 3
    assert run.materialized == set()


def _rewrite_weights(bundle: Path, change, transformer_only: bool = False) -> None:
    """Change the weights of a bundle copy and re-sign it: an intact bundle holding a bad model. With
    ``transformer_only`` the TF-IDF half of the blend is dropped, so the served output is the transformer's."""
    tensors = load_file(str(bundle / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(bundle / "model.safetensors"))
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["weights_sha256"] = sha256_file(bundle / "model.safetensors")
    if transformer_only:
        meta.update(blend=None, lexical_sha256=None)
        (bundle / "lexical.safetensors").unlink(missing_ok=True)
    (bundle / "bundle.json").write_text(json.dumps(meta))


def test_model_with_nan_weights_stops_evaluation_and_quantization(promoted_home, tmp_path):
    manifests = promoted_home.manifests
    home = clone_store(promoted_home.home, tmp_path / "home")
    bundle = copy_bundle(home / manifests["trained_model"].bundle, home / "models" / "diverged")
    _rewrite_weights(bundle, lambda t: t["head.weight"].fill_(float("nan")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAKENEWS_HOME", str(home))
        trained = bundle_manifest("models/diverged")
    io_dir = stage_manifests(
        tmp_path / "io",
        {
            "trained_model": trained,
            "tokenized_news": manifests["tokenized_news"],
            "news_splits": manifests["news_splits"],
        },
    )

    run = materialize(
        home,
        promoted_home.sources,
        only_ops(promoted_home.config),
        io_dir=io_dir,
        selection=dg.AssetSelection.checks_for_assets("trained_model")
        | dg.AssetSelection.assets("model_evaluation", "quantized_model"),
    )

    assert run.checks == {"model_is_sane": False}
    assert run.check_metadata["model_is_sane"]["nonfinite_values"] == 64  # head.weight: 2 x 32
    assert run.materialized == set()


def test_model_that_quantizes_badly_is_not_promoted(promoted_home, tmp_path):
    """Outlier weights are what breaks int8/bf16 in practice: adding the same huge weight to both logits
    leaves the fp32 softmax unchanged but wipes out the quantized models' resolution."""
    before = champion_state(promoted_home.home)
    manifests = promoted_home.manifests
    home = clone_store(promoted_home.home, tmp_path / "home")
    bundle = copy_bundle(home / manifests["trained_model"].bundle, home / "models" / "outlier")

    def add_outlier(tensors):
        tensors["head.weight"][:, 0] += 5000.0

    # transformer only: the blend's TF-IDF half would carry the served output past the broken transformer
    _rewrite_weights(bundle, add_outlier, transformer_only=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAKENEWS_HOME", str(home))
        trained = bundle_manifest("models/outlier")
    evaluation = manifests["model_evaluation"]
    evaluation = evaluation.model_copy(
        update={"challenger": evaluation.challenger.model_copy(update={"bundle": "models/outlier"})}
    )
    io_dir = stage_manifests(
        tmp_path / "io",
        {
            "trained_model": trained,
            "tokenized_news": manifests["tokenized_news"],
            "news_splits": manifests["news_splits"],
            "model_evaluation": evaluation,
        },
    )

    run = materialize(
        home,
        promoted_home.sources,
        only_ops(promoted_home.config),
        io_dir=io_dir,
        selection=dg.AssetSelection.assets("quantized_model", "production_model")
        | dg.AssetSelection.checks_for_assets("quantized_model"),
    )

    assert run.materialized == {"quantized_model"}
    assert run.checks == {"quantization_parity": False}
    quantized = read_manifests_from(io_dir)["quantized_model"]
    assert sorted(quantized.failed_variants) == ["bf16", "int8"]
    assert max(quantized.parity[v].agreement for v in ("bf16", "int8")) < 0.9
    assert not (home / "production" / "champion").exists()
    assert champion_state(promoted_home.home) == before


def test_new_data_flows_through_and_old_artifacts_stay(promoted_home, tmp_path):
    """Different sources -> a new raw_news data version and new content-addressed folders; earlier folders
    (which other materializations' manifests name) are left intact."""
    manifests, home = promoted_home.manifests, promoted_home.home
    other = write_news_csv(tmp_path / "other.csv", n=120, seed=3)
    run = materialize(
        home,
        other,
        only_ops(promoted_home.config),
        selection=dg.AssetSelection.assets("raw_news", "validated_news", "news_splits")
        | dg.AssetSelection.checks_for_assets("validated_news", "news_splits"),
    )
    assert run.result.success and run.materialized == {"raw_news", "validated_news", "news_splits"}
    new = read_manifests(home)
    assert new["raw_news"].data_version != manifests["raw_news"].data_version
    assert new["news_splits"].key != manifests["news_splits"].key
    assert (home / manifests["raw_news"].news.location).is_file()
    assert (home / manifests["news_splits"].splits["test"].location).is_file()


def test_parity_warns_but_does_not_block_while_one_variant_is_within_bounds(promoted_home):
    from fakenews_assets.assets.deployment import quantization_parity

    manifest = promoted_home.manifests["quantized_model"]
    parity = {**manifest.parity, "int8": manifest.parity["int8"].model_copy(update={"agreement": 0.5, "passed": False})}
    manifest = manifest.model_copy(
        update={
            "parity": parity,
            "failed_variants": ["int8"],
            "all_passed": False,
            "passed": True,
            "recommended": "bf16",
        }
    )
    result = quantization_parity(manifest)
    assert (result.passed, result.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert "serving bf16" in result.description

    manifest = manifest.model_copy(update={"failed_variants": ["int8", "bf16"], "passed": False, "recommended": "fp32"})
    result = quantization_parity(manifest)
    assert (result.passed, result.severity) == (False, dg.AssetCheckSeverity.ERROR)
