"""Fixtures for the Dagster asset graph tests: offline switches, a tiny training config, an in-process
``materialize`` helper, and one session-wide home where a first model was trained and promoted."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from fakenews_ml.manifests import Manifest, dump_manifest, load_manifest

from .data import write_news_csv

OFFLINE_ENV = {
    "NO_GCE_CHECK": "true",
    "WANDB_MODE": "disabled",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
MAX_LENGTH = 24
# Learns the synthetic data's keyword signal perfectly in a few seconds with the tiny encoder.
GOOD_TRAINING = {
    "max_steps": 40,
    "epochs": 10,
    "batch_size": 16,
    "learning_rate": 3e-3,
    "head_learning_rate": 1.5e-2,
    "warmup_ratio": 0.0,
    "progress_bar": False,
}
# Learns nothing: a challenger that must lose against the champion. Transformer only: the TF-IDF half of the
# default blend would learn the synthetic keywords without a single gradient step.
WORSE_TRAINING = {
    **GOOD_TRAINING,
    "max_steps": 2,
    "learning_rate": 1e-9,
    "head_learning_rate": 1e-9,
    "lexical_blend": False,
}
# The training graph (what full_pipeline and retrain materialize) and its blocking checks.
CHECKS = (
    "news_quality_suite",
    "splits_do_not_leak",
    "model_is_sane",
    "quantization_parity",
    "challenger_not_worse",
    "feedback_quality_suite",
)
ASSET_NAMES = (
    "raw_news",
    "feedback_labels",
    "validated_news",
    "news_splits",
    "tokenized_news",
    "trained_model",
    "model_evaluation",
    "quantized_model",
    "production_model",
    "reference_profile",
)
# The monitoring side: the observed prediction log and the daily-partitioned drift report with its check.
MONITORING_NAMES = ("prediction_log", "daily_predictions", "drift_report", "live_quality")
MONITORING_CHECKS = ("drift_within_thresholds", "live_quality_within_bounds")
# Launched on purpose, never by full_pipeline or retrain: the hyperparameter search.
MODEL_LAB_NAMES = ("hyperparameter_search",)
ALL_ASSET_NAMES = ASSET_NAMES + MONITORING_NAMES + MODEL_LAB_NAMES


def run_config(encoder_dir: Path, training: dict | None = None, **ops) -> dict:
    config = {
        "ops": {
            "tokenized_news": {"config": {"encoder": str(encoder_dir), "max_length": MAX_LENGTH}},
            "trained_model": {"config": dict(training or GOOD_TRAINING)},
            "reference_profile": {"config": {"sample_size": 40}},
            **{name: {"config": value} for name, value in ops.items()},
        },
        "resources": {"compute": {"config": {"accelerator": "cpu", "precision": "32-true", "num_threads": 2}}},
    }
    return config


def only_ops(config: dict, *names: str) -> dict:
    """``config`` with op config for ``names`` only (a run rejects config for ops it does not run)."""
    return {**config, "ops": {k: v for k, v in config["ops"].items() if k in names}}


@dataclass
class Run:
    """What one in-process run did, in the terms the tests talk about."""

    result: dg.ExecuteInProcessResult
    materialized: set[str] = field(default_factory=set)
    checks: dict[str, bool] = field(default_factory=dict)
    check_metadata: dict[str, dict] = field(default_factory=dict)
    check_descriptions: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (severity, description)
    metadata: dict[str, dict] = field(default_factory=dict)
    failed_steps: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, result: dg.ExecuteInProcessResult) -> Run:
        run = cls(result)
        for event in result.all_events:
            if event.event_type_value == "ASSET_MATERIALIZATION":
                materialization = event.event_specific_data.materialization
                name = materialization.asset_key.to_user_string()
                run.materialized.add(name)
                run.metadata[name] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            elif event.event_type_value == "ASSET_CHECK_EVALUATION":
                evaluation = event.event_specific_data
                run.checks[evaluation.check_name] = evaluation.passed
                run.check_metadata[evaluation.check_name] = {
                    k: getattr(v, "value", v) for k, v in evaluation.metadata.items()
                }
                run.check_descriptions[evaluation.check_name] = (evaluation.severity.value, evaluation.description)
            elif event.event_type_value == "STEP_FAILURE":
                run.failed_steps.add(event.step_key)
        return run


@contextmanager
def fakenews_env(home: Path, sources: Path | str, env: dict | None = None):
    """FAKENEWS_HOME and FAKENEWS_SOURCES (and the offline switches, and ``env``) set as a run would see them."""
    with pytest.MonkeyPatch.context() as patch:
        values = {**OFFLINE_ENV, "FAKENEWS_HOME": str(home), "FAKENEWS_SOURCES": str(sources), **(env or {})}
        for key, value in values.items():
            patch.setenv(key, value)
        for key in ("FAKENEWS_GCS_BUCKET", "WANDB_API_KEY", "FAKENEWS_PREDICTION_LOG_URL"):
            patch.delenv(key, raising=False)
        yield


def all_assets() -> list:
    from fakenews_assets.definitions import ASSET_MODULES

    return dg.load_assets_from_modules(ASSET_MODULES)


def all_checks() -> list:
    from fakenews_assets.definitions import ASSET_MODULES

    return dg.load_asset_checks_from_modules(ASSET_MODULES)


def materialize(
    home: Path,
    sources: Path | str,
    config: dict,
    selection=None,
    io_dir: Path | None = None,
    partition_key: str | None = None,
    instance: dg.DagsterInstance | None = None,
    env: dict | None = None,
) -> Run:
    """The training graph (or ``selection``) in-process, with FAKENEWS_HOME and FAKENEWS_SOURCES (and ``env``)
    set for the run and the resources the environment would choose (plus, optionally, manifests read from
    ``io_dir``)."""
    from fakenews_assets.jobs import TRAINING_SELECTION
    from fakenews_assets.resources import ManifestIOManager, build_resources

    with fakenews_env(home, sources, env):
        resources = build_resources()
        if io_dir is not None:
            resources["io_manager"] = ManifestIOManager(base_dir=str(io_dir))
        result = dg.materialize(
            [*all_assets(), *all_checks()],
            resources=resources,
            run_config=config,
            selection=TRAINING_SELECTION if selection is None else selection,
            partition_key=partition_key,
            instance=instance,
            raise_on_error=False,
        )
    return Run.of(result)


def read_manifests(home: Path) -> dict[str, Manifest]:
    return read_manifests_from(home / "dagster" / "manifests")


def read_manifests_from(folder: Path) -> dict[str, Manifest]:
    """The manifests a ManifestIOManager wrote into ``folder``, typed."""
    return {path.stem: load_manifest(path.read_text()) for path in folder.glob("*.json")}


def stage_manifests(io_dir: Path, manifests: dict[str, Manifest]) -> Path:
    """Write manifests where a ``ManifestIOManager(base_dir=io_dir)`` will load them as upstream values."""
    io_dir.mkdir(parents=True, exist_ok=True)
    for name, manifest in manifests.items():
        (io_dir / f"{name}.json").write_text(dump_manifest(manifest))
    return io_dir


def champion_state(home: Path) -> tuple[str | None, list[str]]:
    """Where the production link points, and the promotion history: what 'unchanged' compares."""
    link = home / "production" / "champion"
    history = home / "production" / "promotions.jsonl"
    target = str(link.resolve()) if link.is_symlink() else None
    return target, history.read_text().splitlines() if history.exists() else []


@pytest.fixture(autouse=True)
def offline_env(monkeypatch, tmp_path):
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    for key in ("FAKENEWS_GCS_BUCKET", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)


@dataclass
class PromotedHome:
    home: Path
    sources: Path
    config: dict
    run: Run
    encoder_dir: Path
    manifests: dict  # as the first run left them (later tests may materialize again)


@pytest.fixture(scope="session")
def promoted_home(tmp_path_factory, tiny_encoder_dir) -> PromotedHome:
    """A FAKENEWS_HOME after one full, successful run on good synthetic data: a champion is serving.

    Tests that use it must leave the champion as it is (they check exactly that)."""
    root = tmp_path_factory.mktemp("promoted")
    home = root / "home"
    sources = write_news_csv(root / "sources" / "news.csv", n=300, seed=0)
    config = run_config(tiny_encoder_dir)
    run = materialize(home, sources, config)
    assert run.result.success, f"first run failed: {run.failed_steps}"
    return PromotedHome(home, sources, config, run, Path(tiny_encoder_dir), read_manifests(home))


def clone_store(home: Path, target: Path) -> Path:
    """Another artifact store holding the same data and bundles as ``home`` (hard links: cheap), but no champion
    and no Dagster state: manifests of ``home`` are valid there, since they name locations, not paths."""
    for folder in ("assets", "models"):
        if (home / folder).is_dir():
            shutil.copytree(home / folder, target / folder, copy_function=os.link)
    return target


def copy_bundle(bundle: Path, target: Path) -> Path:
    """A private copy of a bundle without its quantized variants (so quantization runs again)."""
    copied = Path(shutil.copytree(bundle, target, ignore=shutil.ignore_patterns("variants", "quantization.json")))
    return copied
