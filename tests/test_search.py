"""The hyperparameter search stage on tiny data, with real Optuna storages (SQLite files, PostgreSQL when the
server is up) and real Lightning training of the tiny BERT: budgets, resuming, several workers on one study,
failures, and the pieces (space, samples, storage URLs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
from pydantic import ValidationError

from fakenews_ml.config import ModelConfig, SearchConfig, TrainConfig
from fakenews_ml.manifests import dump_manifest
from fakenews_ml.search.space import apply_params, stratified_sample
from fakenews_ml.search.storage import open_storage, redact, search_path_schema, with_search_path
from fakenews_ml.stages.search import SearchFailed, best_hyperparameters, search_hyperparameters

COMPUTE = {"accelerator": "cpu", "precision": "32-true", "num_threads": 1}
# Three quick trials of the tiny BERT on the tiny frames (96 train rows, 32 val rows); no pruning, so each
# trial finishes and the importance can be computed.
TINY_SEARCH = {
    "n_trials": 3,
    "train_rows": 64,
    "val_rows": 32,
    "epochs": 2,
    "max_steps": 16,  # two epochs of 64 rows even at batch size 8
    "startup_trials": 2,
    "pruner_startup_trials": 10,
    "learning_rate_min": 5e-4,
    "learning_rate_max": 5e-3,
    "head_learning_rate_min": 1e-3,
    "head_learning_rate_max": 3e-2,
    "batch_sizes": [8, 16],
}


@pytest.fixture
def tiny_tokenized(store_splits, tiny_frames, tiny_model_config):
    from fakenews_ml.stages.tokenizing import tokenize_news_splits

    splits = store_splits(tiny_frames)
    return splits, tokenize_news_splits(splits, tiny_model_config)


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna' / 'studies.db'}"


# ----- the pieces -----------------------------------------------------------------------------------------


def test_parameters_land_in_the_model_and_training_configs():
    params = {"learning_rate": 1e-4, "head_learning_rate": 2e-3, "dropout": 0.25, "rdrop_alpha": 1.5, "batch_size": 16}
    model, train = apply_params(ModelConfig(), TrainConfig(epochs=5), params)
    assert model.dropout == 0.25 and "dropout" not in TrainConfig.model_fields
    assert (train.learning_rate, train.head_learning_rate, train.rdrop_alpha, train.batch_size) == (1e-4, 2e-3, 1.5, 16)
    assert train.epochs == 5  # what the search does not tune stays as configured
    with pytest.raises(ValueError, match="not a model or training hyperparameter"):
        apply_params(ModelConfig(), TrainConfig(), {"momentum": 0.9})
    with pytest.raises(ValidationError, match="dropout"):
        apply_params(ModelConfig(), TrainConfig(), {"dropout": 1.5})


def test_search_config_rejects_bounds_out_of_order():
    with pytest.raises(ValidationError, match="learning_rate_min"):
        SearchConfig(learning_rate_min=1e-3, learning_rate_max=1e-4)
    with pytest.raises(ValidationError, match="batch_sizes"):
        SearchConfig(batch_sizes=[])
    assert SearchConfig(dropout_min=0.1, dropout_max=0.1).dropout_max == 0.1  # equal bounds fix a parameter


def test_the_sample_is_seeded_and_keeps_the_class_shares():
    labels = np.array([1] * 30 + [0] * 170)
    sample = stratified_sample(labels, 50, seed=3)
    assert len(sample) == 50 and labels[sample].sum() == 8  # 15% fake, as in the split (7.5 rounds to 8)
    assert np.array_equal(sample, stratified_sample(labels, 50, seed=3))
    assert not np.array_equal(sample, stratified_sample(labels, 50, seed=4))
    assert len(stratified_sample(labels, None, seed=3)) == 200
    rare = np.array([1] + [0] * 99)
    kept = stratified_sample(rare, 10, seed=0)
    assert len(kept) == 10 and rare[kept].sum() == 1  # a rare class stays in


OPEN_AT_ONCE = """
import sys, time
from fakenews_ml.search.storage import open_storage
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every process opens at the same instant
open_storage(sys.argv[1])
print("OPENED")
"""


def test_workers_opening_a_new_storage_at_once_all_get_it(tmp_path):
    """The first workers of a search race to create its tables; the losers must open them, not fail."""
    import time

    for round_ in range(2):
        url = f"sqlite:///{tmp_path / f'race{round_}' / 'studies.db'}"
        start = str(time.time() + 4)
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT_ONCE, url, start],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
        assert all("OPENED" in out for out in outputs), "\n".join(o[-1500:] for o in outputs)


def test_storage_urls_hide_passwords_and_carry_a_schema():
    url = "postgresql://dagster:s3cr%40t@db.internal:5432/dagster"
    assert "s3cr" not in redact(url) and "db.internal:5432/dagster" in redact(url)
    scoped = with_search_path(url, "optuna")
    assert search_path_schema(scoped) == "optuna"
    assert "s3cr%40t" in scoped  # the real URL keeps its credentials; only what is shown hides them
    assert search_path_schema(url) is None


# ----- the study --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_study_runs_its_budget_then_resumes_and_grows(tiny_tokenized, tmp_path):
    splits, tokenized = tiny_tokenized
    storage = _sqlite(tmp_path)
    config = SearchConfig(**TINY_SEARCH)

    first = search_hyperparameters(tokenized, splits, config, storage, compute=COMPUTE)
    assert first.reused is False and first.new_trials == 3 and len(first.trials) == 3
    assert first.complete == 3 and first.pruned == first.failed == 0
    for trial in first.trials:
        assert trial.state == "COMPLETE" and 0.0 <= trial.value <= 1.0
        assert trial.epochs_reported == 2  # the Lightning callback reported after each epoch
        assert trial.steps and trial.steps <= config.max_steps and trial.worker
        assert set(trial.params) == {
            "learning_rate",
            "head_learning_rate",
            "dropout",
            "rdrop_alpha",
            "weight_decay",
            "batch_size",
        }
        assert config.learning_rate_min <= trial.params["learning_rate"] <= config.learning_rate_max
        assert trial.params["batch_size"] in (8, 16)
    best = max(first.trials, key=lambda t: t.value)
    assert (first.best_trial, first.best_value, first.best_params) == (best.number, best.value, best.params)
    assert (first.train_rows, first.val_rows) == (64, 32)
    assert set(first.importance) <= set(best.params) and first.importance
    home = Path(os.environ["FAKENEWS_HOME"])
    for location in first.plots.values():
        assert (home / location).read_bytes()[:4] == b"\x89PNG"
    assert set(first.plots) == {"objective_per_trial", "parameter_importance"}
    assert not list((home / "runs" / "hyperparameter_search").glob("*/trial-*"))  # trial bundles are cleaned up

    # the study is in the storage, under its derived name
    stored = optuna.load_study(study_name=first.study, storage=storage)
    assert [t.value for t in stored.trials] == [t.value for t in first.trials]

    # the same search again: the study holds its budget, nothing runs, the same folder
    again = search_hyperparameters(tokenized, splits, config, storage, compute=COMPUTE)
    assert again.reused is True and again.new_trials == 0 and again.folder == first.folder
    # a larger budget continues the same study (the budget is not part of its name)
    grown = search_hyperparameters(
        tokenized, splits, SearchConfig(**{**TINY_SEARCH, "n_trials": 4}), storage, compute=COMPUTE
    )
    assert grown.study == first.study and grown.new_trials == 1 and len(grown.trials) == 4
    assert [t.number for t in grown.trials] == [0, 1, 2, 3]
    # another search space is another study
    other = SearchConfig(**{**TINY_SEARCH, "n_trials": 1, "batch_sizes": [8]})
    assert search_hyperparameters(tokenized, splits, other, storage, compute=COMPUTE).study != first.study

    model, train = best_hyperparameters(grown, ModelConfig(), TrainConfig())
    assert model.dropout == grown.best_params["dropout"] and train.batch_size == grown.best_params["batch_size"]


@pytest.mark.slow
def test_the_median_pruner_stops_trials_behind_the_others(tiny_tokenized, tmp_path):
    splits, tokenized = tiny_tokenized
    # learning rates down to 1e-9 (which learn nothing) beside ones that learn: the first trial sets the median
    config = SearchConfig(
        **{
            **TINY_SEARCH,
            "n_trials": 4,
            "pruner_startup_trials": 1,
            "epochs": 3,
            "max_steps": 30,
            "learning_rate_min": 1e-9,
            "head_learning_rate_min": 1e-9,
        }
    )
    found = search_hyperparameters(tokenized, splits, config, _sqlite(tmp_path), compute=COMPUTE)
    assert found.complete + found.pruned == 4 and found.complete >= 1 and found.pruned >= 1
    for trial in found.trials:
        assert trial.epochs_reported >= 1 and trial.last_reported is not None
        if trial.state == "PRUNED":  # stopped early, behind the trial that set the median
            assert trial.epochs_reported < config.epochs and trial.value is None
            assert trial.last_reported < found.best_value


@pytest.mark.slow
def test_the_time_budget_stops_the_study(tiny_tokenized, tmp_path):
    splits, tokenized = tiny_tokenized
    config = SearchConfig(**{**TINY_SEARCH, "n_trials": 20, "timeout_minutes": 0.001})  # 60 ms
    found = search_hyperparameters(tokenized, splits, config, _sqlite(tmp_path), compute=COMPUTE)
    assert found.new_trials == 1 and len(found.trials) == 1  # the running trial finishes; no new one starts


def test_a_search_where_every_trial_fails_says_why(tiny_tokenized, tmp_path, monkeypatch):
    import fakenews_ml.search.trials as trials

    def broken_training(*args, **kwargs):
        raise RuntimeError("the device went away")

    monkeypatch.setattr(trials, "train_model", broken_training)
    splits, tokenized = tiny_tokenized
    config = SearchConfig(**{**TINY_SEARCH, "n_trials": 2})
    with pytest.raises(SearchFailed, match="RuntimeError: the device went away"):
        search_hyperparameters(tokenized, splits, config, _sqlite(tmp_path), compute=COMPUTE)
    (study,) = optuna.get_all_study_summaries(_sqlite(tmp_path))
    trials_ = optuna.load_study(study_name=study.study_name, storage=_sqlite(tmp_path)).trials
    assert [t.state.name for t in trials_] == ["FAIL", "FAIL"]  # recorded, and the budget was not spent looping


WORKER = """
import json, sys, torch
torch.set_num_threads(1)
from fakenews_ml.config import SearchConfig
from fakenews_ml.manifests import load_manifest
from fakenews_ml.stages.search import search_hyperparameters
folder, storage = sys.argv[1], sys.argv[2]
tokenized = load_manifest(open(folder + "/tokenized.json").read())
splits = load_manifest(open(folder + "/splits.json").read())
config = SearchConfig(**json.load(open(folder + "/config.json")))
found = search_hyperparameters(tokenized, splits, config, storage, compute=json.load(open(folder + "/compute.json")))
print("STUDY", found.study, found.new_trials)
"""


@pytest.mark.slow
def test_two_workers_share_one_study(tiny_tokenized, tmp_path):
    """Two processes run the same search at once on one SQLite storage: they join one study, split its
    trials between them and stop at the budget (finished trials counted across both)."""
    import json

    splits, tokenized = tiny_tokenized
    folder = tmp_path / "hand_off"
    folder.mkdir()
    (folder / "tokenized.json").write_text(dump_manifest(tokenized))
    (folder / "splits.json").write_text(dump_manifest(splits))
    config = {**TINY_SEARCH, "n_trials": 4, "epochs": 1, "max_steps": 6}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "compute.json").write_text(json.dumps(COMPUTE))
    storage = _sqlite(tmp_path)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(folder), storage],
            env={**os.environ, "WANDB_MODE": "disabled"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), "\n".join(o[-3000:] for o in outputs)
    studies = {line.split()[1] for output in outputs for line in output.splitlines() if line.startswith("STUDY")}
    assert len(studies) == 1
    study = optuna.load_study(study_name=studies.pop(), storage=storage)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    # one trial per worker may already run when the other reaches the budget
    assert 4 <= len(finished) <= 5 and len(study.trials) == len(finished)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both workers ran trials
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)  # none sampled twice


def _postgres_url() -> str | None:
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is None:
        return None
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", 5432)) != 0:
            return None
    return os.environ.get("FAKENEWS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def test_a_postgres_study_lives_in_its_own_schema():
    """The deployed storage: the same URL dagster-postgres uses, the study tables in a schema of their own
    (Optuna's alembic_version never meets Dagster's), shared by two storage objects like two workers."""
    import sqlalchemy as sa

    base = _postgres_url()
    if base is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 or no driver (psycopg) installed")
    schema = f"optuna_test_{uuid.uuid4().hex[:8]}"
    url = with_search_path(base, schema)
    engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        first = optuna.create_study(study_name="shared", storage=open_storage(url), direction="maximize")
        first.optimize(lambda trial: -((trial.suggest_float("x", -2, 2) - 1) ** 2), n_trials=3)
        second = optuna.load_study(study_name="shared", storage=open_storage(url))  # another worker
        second.optimize(lambda trial: -((trial.suggest_float("x", -2, 2) - 1) ** 2), n_trials=2)
        assert len(first.trials) == 5 and first.best_value == second.best_value
        with engine.connect() as connection:
            tables = set(
                connection.execute(
                    sa.text("select table_name from information_schema.tables where table_schema = :s"), {"s": schema}
                ).scalars()
            )
        assert {"studies", "trials", "alembic_version"} <= tables
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
        engine.dispose()
