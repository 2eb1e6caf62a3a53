"""The code location: definitions load and validate, metadata of every asset, launchpad config, jobs,
schedule and resources. No training here: these tests take seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from fakenews_assets.configs import (
    QuantizedModelConfig,
    RawNewsConfig,
    TrainedModelConfig,
    core,
)
from fakenews_assets.definitions import build_definitions
from fakenews_assets.resources import (
    OFFLINE_KEY,
    ManifestIOManager,
    build_resources,
    wandb_config,
)
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import QuantizeConfig, SearchConfig, TrainConfig
from fakenews_ml.errors import FakeNewsError

from .conftest import ALL_ASSET_NAMES, ASSET_NAMES, CHECKS, all_checks

REPO = Path(__file__).resolve().parents[2]
GROUPS = {
    "raw_news": "data",
    "feedback_labels": "data",
    "validated_news": "data",
    "news_splits": "data",
    "tokenized_news": "data",
    "trained_model": "training",
    "model_evaluation": "training",
    "quantized_model": "deployment",
    "production_model": "deployment",
    "reference_profile": "deployment",
    "prediction_log": "monitoring",
    "daily_predictions": "monitoring",
    "drift_report": "monitoring",
    "live_quality": "monitoring",
    "hyperparameter_search": "model_lab",
}
CHECKED = {
    "news_quality_suite": "validated_news",
    "splits_do_not_leak": "news_splits",
    "model_is_sane": "trained_model",
    "quantization_parity": "quantized_model",
    "challenger_not_worse": "model_evaluation",
    "feedback_quality_suite": "feedback_labels",
}
SOURCES = {"prediction_log"}  # observed, not materialized: no code version or owners


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions({})


def test_definitions_load_and_validate(defs):
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == set(ALL_ASSET_NAMES)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.group_name == GROUPS[name]
        assert node.description and len(node.description) > 40, name
        if name in SOURCES:
            assert node.is_observable and not node.is_materializable
            continue
        assert node.owners == ["team:ml-platform"]
        assert node.kinds, name
        assert node.code_version and node.code_version != "1", name
    assert graph.get(dg.AssetKey("trained_model")).pools == {"gpu"}
    assert graph.get(dg.AssetKey("hyperparameter_search")).pools == {"gpu"}  # trials train on the same device
    # each asset's code version is its stage's, derived from the code (never a constant)
    assert graph.get(dg.AssetKey("trained_model")).code_version == code_version("fakenews_ml.stages.training")
    assert graph.get(dg.AssetKey("raw_news")).code_version == code_version("fakenews_ml.stages.ingest")
    upstream = {
        name: {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys} for name in ALL_ASSET_NAMES
    }
    assert upstream["validated_news"] == {"raw_news", "feedback_labels"}  # feedback lineage
    assert upstream["feedback_labels"] == {"prediction_log"}
    assert upstream["daily_predictions"] == {"prediction_log"}
    assert upstream["drift_report"] == {"daily_predictions", "reference_profile"}
    assert upstream["live_quality"] == {"prediction_log"}
    assert upstream["production_model"] == {"model_evaluation", "quantized_model"}
    assert upstream["model_evaluation"] == {"trained_model", "news_splits"}
    assert upstream["reference_profile"] == {"production_model", "news_splits"}
    # trained_model reads the latest search only when asked to: no edge, so no retrain selection holds a search
    assert upstream["hyperparameter_search"] == {"tokenized_news", "news_splits"}
    assert upstream["trained_model"] == {"tokenized_news", "news_splits"}


def test_every_gate_is_a_blocking_check_on_its_asset(defs):
    specs = {spec.name: spec for check in all_checks() for spec in check.check_specs}
    drift = specs.pop("drift_within_thresholds")
    quality = specs.pop("live_quality_within_bounds")
    assert set(specs) == set(CHECKS)
    for name, spec in specs.items():
        assert spec.blocking, name
        assert spec.asset_key.to_user_string() == CHECKED[name]
        assert spec.description
    # nothing is downstream of drift_report: its check informs the drift sensor instead of blocking
    for check, asset in ((drift, "drift_report"), (quality, "live_quality")):
        assert not check.blocking and check.asset_key.to_user_string() == asset and check.partitions_def is not None
    graph = defs.resolve_asset_graph()
    assert {(k.name, k.asset_key.to_user_string()) for k in graph.asset_check_keys} == set(CHECKED.items()) | {
        ("drift_within_thresholds", "drift_report"),
        ("live_quality_within_bounds", "live_quality"),
    }


def _config_fields(defs, asset: str) -> dict:
    job = defs.resolve_implicit_global_asset_job_def()
    ops = job.run_config_schema.config_type.fields["ops"].config_type.fields
    return ops[asset].config_type.fields["config"].config_type.fields


def test_launchpad_shows_every_hyperparameter_with_the_core_default(defs):
    fields = _config_fields(defs, "trained_model")
    expected = {name for name in TrainConfig.model_fields if name not in ("accelerator", "precision", "num_threads")}
    assert expected | {"pooling", "dropout", "use_best_hyperparameters"} == set(fields)
    assert fields["use_best_hyperparameters"].default_value is False
    for name in expected:
        assert fields[name].default_value == TrainConfig.model_fields[name].default, name
    assert fields["learning_rate"].description
    assert "one of: balanced, none" in fields["class_weighting"].description
    quantize = _config_fields(defs, "quantized_model")
    assert quantize["variants"].default_value == ["int8", "bf16"]
    assert quantize["min_agreement"].default_value == QuantizeConfig().min_agreement
    assert set(_config_fields(defs, "model_evaluation")) == {"metric", "tolerance"}
    search = _config_fields(defs, "hyperparameter_search")
    assert set(search) == set(SearchConfig.model_fields)
    assert search["n_trials"].default_value == SearchConfig().n_trials
    assert search["batch_sizes"].default_value == [16, 32]
    assert set(_config_fields(defs, "validated_news")) >= {"min_rows", "max_duplicate_rate", "min_fake_fraction"}
    # sources are read from FAKENEWS_SOURCES when the run starts, not frozen in at import
    assert RawNewsConfig().sources is None


def test_core_model_validates_launchpad_values():
    assert core(TrainedModelConfig(max_steps=5), TrainConfig, accelerator="cpu").max_steps == 5
    with pytest.raises(ValidationError, match="learning_rate"):
        core(TrainedModelConfig(learning_rate=-1.0), TrainConfig)
    with pytest.raises(ValidationError, match="variants"):
        core(QuantizedModelConfig(variants=["int4"]), QuantizeConfig)


def test_jobs_and_schedule_resolve(defs):
    full = defs.resolve_job_def("full_pipeline")
    retrain = defs.resolve_job_def("retrain")
    graph = defs.resolve_asset_graph()
    full_checks = {k.name for k in full.asset_layer.asset_graph.asset_check_keys}
    assert {k.to_user_string() for k in full.asset_layer.executable_asset_keys} == set(ASSET_NAMES)
    assert full_checks == set(CHECKS)
    retrain_assets = {k.to_user_string() for k in retrain.asset_layer.executable_asset_keys}
    assert {"raw_news", "trained_model", "model_evaluation", "quantized_model", "production_model"} <= retrain_assets
    assert "hyperparameter_search" not in retrain_assets  # a retrain never starts a search
    assert graph.get(dg.AssetKey("trained_model")).pools == {"gpu"}

    schedule = defs.resolve_schedule_def("weekly_retrain")
    assert schedule.job_name == "retrain"
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.instance_for_test() as instance:
        requests = schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests
    assert len(requests) == 1


def test_resources_are_local_and_offline_by_default():
    resources = build_resources({})
    assert isinstance(resources["io_manager"], ManifestIOManager)
    assert wandb_config({}) == {"api_key": OFFLINE_KEY, "mode": "offline", "project": "fakenews", "entity": None}


def test_wandb_key_is_only_referenced_never_embedded():
    secret = "k" * 40
    config = wandb_config({"WANDB_API_KEY": secret, "WANDB_MODE": "online", "WANDB_PROJECT": "p"})
    assert config["api_key"] == {"env": "WANDB_API_KEY"}
    assert config["mode"] == "online" and config["project"] == "p"
    assert secret not in repr(config)
    with pytest.raises(FakeNewsError, match="WANDB_API_KEY"):
        wandb_config({"WANDB_MODE": "online"})


def test_dagster_cli_validates_the_code_location(tmp_path):
    """`dagster definitions validate` with the repository's dagster.yaml as the instance config."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "definitions",
            "validate",
            "-m",
            "fakenews_assets.definitions",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr
