"""The model lab in the asset graph: a hyperparameter search of three trials on tiny data (its study in the
instance's storage folder, its trials grouped in W&B offline), trained_model taking the best parameters into
its config, cache key and lineage, and promotions mirrored to W&B as the champion alias."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import optuna
import pytest
from sqlalchemy.engine import make_url

from fakenews_assets.metadata import rounded_json
from fakenews_assets.study_storage import instance_study_storage
from fakenews_ml.config import TrainConfig
from fakenews_ml.errors import FakeNewsError
from fakenews_ml.manifests import HyperparameterSearch
from fakenews_ml.search.storage import search_path_schema
from fakenews_ml.stages.training import model_config_for, training_key
from fakenews_ml.tracking import CHAMPION_ALIAS, MODEL_ARTIFACT, PROMOTION_JOB, TRIAL_JOB
from fakenews_ml.wandb_offline import finished_offline_runs

from .conftest import (
    GOOD_TRAINING,
    Run,
    clone_store,
    materialize,
    only_ops,
    read_manifests,
    read_manifests_from,
    run_config,
    stage_manifests,
)
from .data import write_news_csv

pytestmark = pytest.mark.slow

# Three short trials of the tiny BERT; the median pruner may stop the second and third after their first epoch.
SEARCH = {
    "n_trials": 3,
    "train_rows": 120,
    "val_rows": 40,
    "epochs": 2,
    "max_steps": 16,
    "startup_trials": 2,
    "pruner_startup_trials": 1,
    "learning_rate_min": 1e-3,
    "learning_rate_max": 5e-3,
    "head_learning_rate_min": 5e-3,
    "head_learning_rate_max": 3e-2,
    "batch_sizes": [8, 16],
}
UP_TO_SEARCH = dg.AssetSelection.assets("hyperparameter_search").upstream() | dg.AssetSelection.checks_for_assets(
    "validated_news", "news_splits"
)
PARAMS = {"learning_rate", "head_learning_rate", "dropout", "rdrop_alpha", "weight_decay", "batch_size"}


@dataclass
class SearchedHome:
    home: Path
    sources: Path
    dagster_home: Path
    instance: dg.DagsterInstance
    run: Run
    search: HyperparameterSearch
    encoder_dir: Path


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_encoder_dir):
    """The data assets and a three-trial search, with W&B offline, in a persistent instance (SQLite under its
    DAGSTER_HOME, as `dagster dev` keeps it)."""
    root = tmp_path_factory.mktemp("model_lab")
    sources = write_news_csv(root / "news.csv", n=300, seed=11)
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    config = only_ops(
        run_config(tiny_encoder_dir, hyperparameter_search=SEARCH), "tokenized_news", "hyperparameter_search"
    )
    env = {"WANDB_MODE": "offline", "DAGSTER_HOME": str(dagster_home)}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = materialize(root / "home", sources, config, selection=UP_TO_SEARCH, env=env, instance=instance)
        assert run.result.success, run.failed_steps
        search = read_manifests(root / "home")["hyperparameter_search"]
        yield SearchedHome(root / "home", sources, dagster_home, instance, run, search, Path(tiny_encoder_dir))


def test_the_search_runs_its_trials_in_the_instance_storage(searched):
    search = searched.search
    assert len(search.trials) == 3 and search.complete + search.pruned == 3 and search.failed == 0
    assert all(t.epochs_reported >= 1 for t in search.trials)  # the pruning callback reported each epoch
    assert set(search.best_params) == PARAMS and search.best_value == max(t.value or 0 for t in search.trials)
    # the study lives beside the instance (its storage folder), under the name the manifest gives
    storage = f"sqlite:///{searched.dagster_home / 'storage' / 'optuna' / 'studies.db'}"
    assert search.storage == storage
    study = optuna.load_study(study_name=search.study, storage=storage)
    assert study.best_trial.number == search.best_trial and study.best_params == search.best_params

    metadata = searched.run.metadata["hyperparameter_search"]
    table = metadata["trials"]
    assert [record.data["trial"] for record in table.records] == [0, 1, 2]
    assert {record.data["state"] for record in table.records} <= {"complete", "pruned"}
    assert metadata["best_params"] == rounded_json(search.best_params)  # a learning rate keeps 3 significant digits
    assert metadata["best_value"] == round(search.best_value, 4)
    assert metadata["plots"].count("data:image/png;base64,") == len(search.plots) >= 1
    assert metadata["reused"] is False and metadata["new_trials"] == 3


def test_the_trials_are_one_group_of_wandb_runs(searched):
    search = searched.search
    runs = finished_offline_runs(searched.home / "wandb")
    trials = [run for run in runs if run.job_type == TRIAL_JOB]
    assert search.wandb_group == search.study
    assert {run.group for run in trials} == {search.study}
    assert {run.id for run in trials} == {t.wandb_run for t in search.trials}
    by_trial = {run.summary["trial"]: run for run in trials}
    for trial in search.trials:
        assert by_trial[trial.number].summary["state"] == trial.state.lower()
        if trial.state == "COMPLETE":
            assert by_trial[trial.number].summary["objective"] == pytest.approx(trial.value)


def test_an_unchanged_search_runs_no_trial(searched):
    config = only_ops(run_config(searched.encoder_dir, hyperparameter_search=SEARCH), "hyperparameter_search")
    env = {"WANDB_MODE": "offline", "DAGSTER_HOME": str(searched.dagster_home)}
    run = materialize(
        searched.home,
        searched.sources,
        config,
        selection=dg.AssetSelection.assets("hyperparameter_search"),
        env=env,
        instance=searched.instance,
    )
    assert run.result.success
    again = read_manifests(searched.home)["hyperparameter_search"]
    assert again.reused is True and again.new_trials == 0 and again.folder == searched.search.folder


def test_trained_model_takes_the_best_parameters_into_its_config_key_and_lineage(searched):
    search, home = searched.search, searched.home
    config = only_ops(
        run_config(searched.encoder_dir, training={**GOOD_TRAINING, "use_best_hyperparameters": True}), "trained_model"
    )
    run = materialize(
        home, searched.sources, config, selection=dg.AssetSelection.assets("trained_model"), instance=searched.instance
    )
    assert run.result.success, run.failed_steps
    manifests = read_manifests(home)
    trained = manifests["trained_model"]
    bundle = home / trained.bundle
    meta = json.loads((bundle / "bundle.json").read_text())
    for name, value in search.best_params.items():
        where = meta["model_config"] if name == "dropout" else meta["train_config"]
        assert where[name] == value, name
    assert meta["train_config"]["max_steps"] == GOOD_TRAINING["max_steps"]  # the rest as configured
    lineage = json.loads((bundle / "lineage.json").read_text())
    assert lineage["hyperparameter_search"]["study"] == search.study
    assert lineage["hyperparameter_search"]["trial"] == search.best_trial
    assert lineage["hyperparameter_search"]["params"] == search.best_params
    assert lineage["hyperparameter_search"]["searched_on_these_tokens"] is True
    latest = searched.instance.get_latest_materialization_event(dg.AssetKey("hyperparameter_search"))
    assert lineage["hyperparameter_search"]["dagster_run_id"] == latest.run_id  # the materialization it read
    assert run.metadata["trained_model"]["hyperparameters_from"] == f"{search.study} trial {search.best_trial}"
    # the best parameters are in the cache key (they are configuration values like any other)
    tokenized = manifests["tokenized_news"]
    train_config = TrainConfig(**meta["train_config"])
    model_config = model_config_for(tokenized, "mean", search.best_params["dropout"])
    assert training_key(tokenized, model_config, train_config) == trained.cache_key
    default_config = TrainConfig(**{**meta["train_config"], "learning_rate": GOOD_TRAINING["learning_rate"]})
    assert training_key(tokenized, model_config, default_config) != trained.cache_key


def test_asking_for_the_best_parameters_without_a_search_fails_clearly(searched, tmp_path):
    """An instance that never ran the search (a fresh one here): trained_model says so instead of training."""
    manifests = read_manifests(searched.home)
    io_dir = stage_manifests(tmp_path / "io", {name: manifests[name] for name in ("tokenized_news", "news_splits")})
    config = only_ops(
        run_config(searched.encoder_dir, training={**GOOD_TRAINING, "use_best_hyperparameters": True}), "trained_model"
    )
    run = materialize(
        searched.home, searched.sources, config, io_dir=io_dir, selection=dg.AssetSelection.assets("trained_model")
    )
    assert not run.result.success and run.failed_steps == {"trained_model"}
    failure = next(e for e in run.result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "hyperparameter_search was never materialized" in str(failure.event_specific_data.error)
    assert "trained_model" not in read_manifests_from(io_dir)  # nothing was trained


def test_a_promotion_is_mirrored_as_the_champion_alias(promoted_home, tmp_path):
    """production_model with W&B offline: the promoted bundle's files as the trained_model artifact, with the
    champion alias, in the offline run directory under the store's wandb/ folder."""
    manifests = promoted_home.manifests
    home = clone_store(promoted_home.home, tmp_path / "home")  # the same bundles, no champion yet
    io_dir = stage_manifests(
        tmp_path / "io", {name: manifests[name] for name in ("model_evaluation", "quantized_model")}
    )
    run = materialize(
        home,
        promoted_home.sources,
        {},
        io_dir=io_dir,
        selection=dg.AssetSelection.assets("production_model"),
        env={"WANDB_MODE": "offline"},
    )
    assert run.result.success, run.failed_steps
    production = read_manifests_from(io_dir)["production_model"]
    assert production.promoted
    mirrored = run.metadata["production_model"]["wandb_champion"]
    (promotion,) = [r for r in finished_offline_runs(home / "wandb") if r.job_type == PROMOTION_JOB]
    assert promotion.id == mirrored["id"]
    (artifact,) = promotion.artifacts
    assert artifact.name == MODEL_ARTIFACT and CHAMPION_ALIAS in artifact.aliases
    assert any(alias.startswith("dagster-run-") for alias in artifact.aliases)  # dagster-wandb's convention
    bundle = home / production.champion
    assert json.loads((bundle / "lineage.json").read_text())["hyperparameter_search"] is None  # its own config
    assert {"model.safetensors", "lexical.safetensors", "bundle.json"} <= set(artifact.files)
    assert not any(name.startswith("variants/") for name in artifact.files)  # the files as trained
    assert artifact.metadata["lineage"] == json.loads((bundle / "lineage.json").read_text())
    assert artifact.metadata["metrics"]["test"] == json.loads((bundle / "metrics.json").read_text())["test"]


# ----- where the studies live ---------------------------------------------------------------------------------


def _instance(tmp_path: Path, yaml_text: str | None) -> Path:
    home = tmp_path / "instance"
    home.mkdir()
    if yaml_text is not None:
        (home / "dagster.yaml").write_text(yaml_text)
    return home


def test_sqlite_instances_keep_studies_in_their_storage_folder(tmp_path):
    home = _instance(tmp_path, "telemetry:\n  enabled: false\n")
    assert instance_study_storage({"DAGSTER_HOME": str(home)}) == f"sqlite:///{home}/storage/optuna/studies.db"
    other = tmp_path / "elsewhere"
    home2 = tmp_path / "second"
    home2.mkdir()
    (home2 / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {other}\n")
    assert instance_study_storage({"DAGSTER_HOME": str(home2)}) == f"sqlite:///{other}/optuna/studies.db"
    assert instance_study_storage({}) is None  # a temporary instance: the artifact store decides


def test_postgres_instances_share_their_database_in_a_schema_of_its_own(tmp_path):
    home = _instance(
        tmp_path,
        "storage:\n  postgres:\n    postgres_db:\n      username: dagster\n      password:\n        env: PG_PASSWORD\n"
        "      hostname: db.internal\n      db_name: dagster\n      port: 5433\n",
    )
    url = instance_study_storage({"DAGSTER_HOME": str(home), "PG_PASSWORD": "p@ss word"})
    parsed = make_url(url)
    assert (parsed.drivername, parsed.username, parsed.password) == ("postgresql", "dagster", "p@ss word")
    assert (parsed.host, parsed.port, parsed.database) == ("db.internal", 5433, "dagster")
    assert search_path_schema(url) == "optuna"
    with pytest.raises(FakeNewsError, match="PG_PASSWORD"):
        instance_study_storage({"DAGSTER_HOME": str(home)})
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "dagster.yaml").write_text(
        "run_storage:\n  module: dagster_postgres.run_storage\n  class: PostgresRunStorage\n  config:\n"
        "    postgres_url: postgresql://u:p@h:5432/runs\n"
    )
    assert instance_study_storage({"DAGSTER_HOME": str(legacy)}).startswith("postgresql://u:p@h:5432/runs?")
    mysql = tmp_path / "mysql"
    mysql.mkdir()
    (mysql / "dagster.yaml").write_text("storage:\n  mysql:\n    mysql_url: mysql://u:p@h/db\n")
    assert instance_study_storage({"DAGSTER_HOME": str(mysql)}) is None


def test_an_explicit_study_storage_wins(monkeypatch, tmp_path):
    from fakenews_ml.environment import study_storage_url

    monkeypatch.setenv("FAKENEWS_OPTUNA_STORAGE", "postgresql://u@h/db")
    assert study_storage_url("sqlite:///instance.db") == "postgresql://u@h/db"
    monkeypatch.delenv("FAKENEWS_OPTUNA_STORAGE")
    assert study_storage_url("sqlite:///instance.db") == "sqlite:///instance.db"
    assert study_storage_url(None) == f"sqlite:///{os.environ['FAKENEWS_HOME']}/optuna/studies.db"
