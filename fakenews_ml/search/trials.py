"""One trial: a short training through the one training path (``train_model``) on a seeded sample of the
tokenized splits, with the trial's hyperparameters, reporting the validation ROC-AUC after every epoch to the
pruner (optuna-integration's Lightning callback) and logging to W&B as a run in the study's group."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fakenews_ml.config import ModelConfig, SearchConfig, TrainConfig
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.environment import artifact_store
from fakenews_ml.manifests import TokenizedNews, TrialRecord
from fakenews_ml.model.encoder import load_tokenizer
from fakenews_ml.search.space import apply_params, stratified_sample, suggest
from fakenews_ml.tracking import TRIAL_JOB, TrainingRun, WandbSettings
from fakenews_ml.train import MONITOR, train_model

OBJECTIVE = MONITOR  # the metric early stopping and checkpointing watch: threshold-free, fair to the imbalance
ERROR_CHARS = 500


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class TrialData:
    """What every trial of a study trains on: the same samples, tokenizer and base configurations."""

    splits: dict[str, TokenizedSplit]
    tokenizer: object
    model_config: ModelConfig
    train_config: TrainConfig


def _samples(tokenized: TokenizedNews, config: SearchConfig) -> dict[str, TokenizedSplit]:
    """Seeded stratified samples of the train and val splits (the same for every trial and worker)."""
    store = artifact_store()
    rows = {"train": config.train_rows, "val": config.val_rows}
    samples = {}
    for name, limit in rows.items():
        split = TokenizedSplit.load(store.fetch(tokenized.splits[name].location))
        samples[name] = split.take(stratified_sample(split.labels, limit, config.seed))
    return samples


def sample_rows(tokenized: TokenizedNews, config: SearchConfig) -> tuple[int, int]:
    """How many train and val rows each trial sees."""
    samples = _samples(tokenized, config)
    return len(samples["train"]), len(samples["val"])


def prepare_trial_data(tokenized: TokenizedNews, config: SearchConfig, compute: dict) -> TrialData:
    """The samples, and the per-trial budget (epochs, steps) as a TrainConfig without the lexical half (the
    search tunes the transformer; the blend is fitted after it, on val)."""
    splits = _samples(tokenized, config)
    model_config = ModelConfig(encoder=tokenized.encoder, max_length=tokenized.max_length)
    train_config = TrainConfig(
        epochs=config.epochs,
        max_steps=config.max_steps,
        seed=config.seed,
        lexical_blend=False,
        progress_bar=False,
        **compute,
    )
    return TrialData(splits, load_tokenizer(model_config), model_config, train_config)


def run_trial(
    trial,
    data: TrialData,
    config: SearchConfig,
    work_root: Path,
    study_name: str,
    wandb: WandbSettings | None = None,
) -> float:
    """The Optuna objective: train with the trial's parameters, return the validation ROC-AUC. Raises
    ``optuna.TrialPruned`` when the pruner stops it; any other failure is recorded on the trial."""
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    running = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if any(other.number != trial.number for other in running):
        # another worker is sampling from the same seed: draw from a fresh one, not the same points as it
        trial.study.sampler.reseed_rng()
    params = suggest(trial, config)
    model_config, train_config = apply_params(data.model_config, data.train_config, params)
    trial.set_user_attr("worker", worker_name())
    run = None
    if wandb is not None and wandb.mode != "disabled":
        run = TrainingRun(
            wandb,
            {"study": study_name, "trial": trial.number, **params},
            name=f"trial-{trial.number}",
            group=study_name,
            job_type=TRIAL_JOB,
        )
    folder = Path(work_root) / f"trial-{trial.number:04d}-{uuid.uuid4().hex[:8]}"  # unique across workers
    started = time.perf_counter()
    outcome: dict = {"state": "failed"}
    try:
        result = train_model(
            data.splits,
            data.tokenizer,
            model_config,
            train_config,
            folder / "bundle",
            logger=run.start(study_name) if run else None,
            work_dir=folder,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor=OBJECTIVE)],
        )
        value = result.val_metrics.get("roc_auc")
        if value is None:
            raise ValueError("the validation sample holds one class: ROC-AUC is undefined")
        trial.set_user_attr("steps", result.steps)
        outcome = {"state": "complete", "objective": float(value), "steps": result.steps}
        return float(value)
    except optuna.TrialPruned:
        outcome = {"state": "pruned"}
        raise
    except Exception as error:
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:ERROR_CHARS])
        raise
    finally:
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        if run is not None:
            run.summarize({"trial": trial.number, **outcome})
            info = run.finish(None)
            if info.get("id"):
                trial.set_user_attr("wandb_run", info["id"])
        shutil.rmtree(folder, ignore_errors=True)


def trial_record(trial) -> TrialRecord:
    """A finished (or running) Optuna ``FrozenTrial`` in the manifest's terms."""
    reported = trial.intermediate_values
    attrs = trial.user_attrs
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        value=trial.value if trial.state.name == "COMPLETE" else None,
        params=dict(trial.params),
        epochs_reported=len(reported),
        last_reported=reported[max(reported)] if reported else None,
        steps=attrs.get("steps"),
        seconds=attrs.get("seconds"),
        wandb_run=attrs.get("wandb_run"),
        worker=attrs.get("worker"),
        error=attrs.get("error"),
    )
