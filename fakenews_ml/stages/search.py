"""hyperparameter_search: an Optuna study over the training hyperparameters on the tokenized splits.

The study lives in a database (``storage_url``: SQLite locally, PostgreSQL when deployed) under a name derived
from what decides its trials (the tokens, the search settings without the budget, the compute, this code's
version), so every worker that runs the same search joins the same study, and a larger ``n_trials`` continues
it. Trials are sampled by TPE and stopped early by the median pruner; the study stops at ``n_trials`` finished
or pruned trials (counted across workers) or when the time budget is spent. ``best_hyperparameters`` and
``search_lineage`` are what trained_model takes from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import ModelConfig, SearchConfig, TrainConfig
from fakenews_ml.device import resolve_precision
from fakenews_ml.environment import artifact_store
from fakenews_ml.errors import FakeNewsError
from fakenews_ml.manifests import HyperparameterSearch, NewsSplits, TokenizedNews
from fakenews_ml.search.plots import save_search_plots
from fakenews_ml.search.space import apply_params
from fakenews_ml.search.storage import open_storage, redact
from fakenews_ml.search.trials import OBJECTIVE, prepare_trial_data, run_trial, sample_rows, trial_record
from fakenews_ml.store import join
from fakenews_ml.tracking import WandbSettings

CODE_VERSION = code_version(__name__)
STAGE = "hyperparameter_search"
BUDGET_FIELDS = {"n_trials", "timeout_minutes"}  # how long to search, not what: kept out of the study's key
log = logging.getLogger(__name__)


class SearchFailed(FakeNewsError):
    """No trial of the study completed."""


def study_key(tokenized: TokenizedNews, config: SearchConfig, compute: dict) -> str:
    settings = {
        **compute,
        "precision": resolve_precision(compute.get("precision", "auto"), compute.get("accelerator", "auto")),
    }
    settings.pop("num_threads", None)
    return content_key(tokenized.fingerprint, config.model_dump(exclude=BUDGET_FIELDS), settings, CODE_VERSION)


def _study(name: str, storage, config: SearchConfig, finished: int = 0):
    import optuna

    sampler = optuna.samplers.TPESampler(
        n_startup_trials=config.startup_trials,
        # one worker alone replays the same trials; a worker joining a study (or running beside another, see
        # run_trial) samples other points
        seed=config.seed + finished,
        constant_liar=True,  # a running trial on another worker counts as a poor result: no duplicate points
    )
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=config.pruner_startup_trials, n_warmup_steps=config.pruner_warmup_epochs
    )
    return optuna.create_study(
        study_name=name, storage=storage, direction="maximize", sampler=sampler, pruner=pruner, load_if_exists=True
    )


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _importance(study) -> dict[str, float]:
    """fANOVA importance of each parameter for the objective; {} until there is enough to tell."""
    import optuna
    from optuna.trial import TrialState

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}
    try:
        return {name: round(float(v), 4) for name, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError) as problem:  # e.g. every complete trial has the same parameters
        log.warning("parameter importance not computed: %s", problem)
        return {}


def search_hyperparameters(
    tokenized: TokenizedNews,
    splits: NewsSplits,
    config: SearchConfig,
    storage_url: str,
    *,
    compute: dict | None = None,
    wandb: WandbSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> HyperparameterSearch:
    """Run the study until it holds ``config.n_trials`` finished trials or the time budget is spent, and
    describe it. A study that already holds its budget runs nothing (``reused``)."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    compute = dict(compute or {})
    key = study_key(tokenized, config, compute)
    name = f"fakenews-search-{key}"
    storage = open_storage(storage_url)
    study = _study(name, storage, config)
    done_before = _finished(study)
    started = time.perf_counter()
    started_trials = len(study.trials)
    if done_before < config.n_trials:
        study = _study(name, storage, config, finished=done_before)
        data = prepare_trial_data(tokenized, config, compute)
        work_root = artifact_store().path(join("runs", STAGE, key))

        def report(study, trial) -> None:
            if progress is not None:
                reported = trial.intermediate_values
                value = trial.value if trial.state == TrialState.COMPLETE else None
                progress(
                    f"trial {trial.number}: {trial.state.name.lower()}"
                    + (f", {OBJECTIVE} {value:.4f}" if value is not None else "")
                    + (f" after {len(reported)} epoch(s)" if trial.state == TrialState.PRUNED else "")
                    + f" ({_finished(study)}/{config.n_trials} finished)"
                )

        study.optimize(
            lambda trial: run_trial(trial, data, config, work_root, name, wandb),
            n_trials=config.n_trials - done_before,
            timeout=config.timeout_minutes * 60 if config.timeout_minutes else None,
            # the budget counts trials finished by every worker of this study
            callbacks=[MaxTrialsCallback(config.n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED)), report],
            catch=(Exception,),  # a failed trial is recorded (with its error) and the search goes on
            gc_after_trial=True,
        )
    new_trials = len(study.trials) - started_trials
    trials = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t.state == "COMPLETE"]
    if not complete:
        errors = [f"trial {t.number}: {t.error}" for t in trials if t.error]
        raise SearchFailed(
            f"no trial of study {name} completed ({len(trials)} tried)" + (f"; {errors[0]}" if errors else "")
        )
    best = study.best_trial
    importance = _importance(study)
    state = [(t.number, t.state, t.value, t.last_reported) for t in trials]
    location = artifact_location(STAGE, content_key(key, state))
    train_rows, val_rows = sample_rows(tokenized, config)

    def build(staging) -> HyperparameterSearch:
        plots = save_search_plots(trials, importance, OBJECTIVE, staging / "plots")
        return HyperparameterSearch(
            code_version=CODE_VERSION,
            key=key,
            study=name,
            storage=redact(storage_url),
            folder=location,
            objective=OBJECTIVE,
            config=config,
            tokenized_fingerprint=tokenized.fingerprint,
            splits_fingerprint=splits.fingerprint,
            train_rows=train_rows,
            val_rows=val_rows,
            best_trial=best.number,
            best_value=float(best.value),
            best_params=dict(best.params),
            trials=trials,
            complete=len(complete),
            pruned=sum(t.state == "PRUNED" for t in trials),
            failed=sum(t.state == "FAIL" for t in trials),
            new_trials=new_trials,
            importance=importance,
            plots={name: join(location, "plots", path.name) for name, path in plots.items()},
            wandb_group=name if wandb is not None and wandb.mode != "disabled" else None,
        )

    manifest = cached_or_build(location, HyperparameterSearch, build)
    return manifest.model_copy(
        update={"new_trials": new_trials, "reused": new_trials == 0, "seconds": round(time.perf_counter() - started, 1)}
    )


def best_hyperparameters(
    search: HyperparameterSearch, model_config: ModelConfig, train_config: TrainConfig
) -> tuple[ModelConfig, TrainConfig]:
    """trained_model's configurations with the best trial's parameters in place of their values."""
    return apply_params(model_config, train_config, search.best_params)


def search_lineage(search: HyperparameterSearch, tokenized: TokenizedNews) -> dict:
    """What a bundle trained with the best parameters records about where they came from."""
    return {
        "study": search.study,
        "trial": search.best_trial,
        "objective": search.objective,
        "value": search.best_value,
        "params": search.best_params,
        "storage": search.storage,
        "key": search.key,
        "searched_on_these_tokens": search.tokenized_fingerprint == tokenized.fingerprint,
    }
