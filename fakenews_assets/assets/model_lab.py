"""Model lab group: hyperparameter_search, an Optuna study whose best trial trained_model can train with
(``use_best_hyperparameters``: it reads the latest search the instance recorded, ``latest_search``). Not part of
full_pipeline or retrain, and no upstream of trained_model: a search is launched on purpose."""

import dagster as dg

from fakenews_assets.configs import HyperparameterSearchConfig, core
from fakenews_assets.metadata import json_metadata, location, number, plots_markdown, table
from fakenews_assets.resources import ComputeResource
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import SearchConfig
from fakenews_ml.manifests import HyperparameterSearch, NewsSplits, TokenizedNews
from fakenews_ml.tracking import WandbSettings

GROUP = "model_lab"
OWNERS = ["team:ml-platform"]
PARAMS = ("learning_rate", "head_learning_rate", "dropout", "rdrop_alpha", "weight_decay", "batch_size")
TRIAL_COLUMNS = {
    "trial": "int",
    "state": "string",
    "value": "float",
    **{name: "int" if name == "batch_size" else "float" for name in PARAMS},
    "epochs_reported": "int",
    "last_reported": "float",
    "seconds": "float",
    "worker": "string",
    "wandb_run": "string",
    "error": "string",
}


def trial_table(search: HyperparameterSearch) -> dg.MetadataValue:
    rows = [
        {
            "trial": t.number,
            "state": t.state.lower(),
            "value": round(t.value, 4) if t.value is not None else None,
            **{name: t.params.get(name) for name in PARAMS},
            "epochs_reported": t.epochs_reported,
            "last_reported": round(t.last_reported, 4) if t.last_reported is not None else None,
            "seconds": t.seconds,
            "worker": t.worker,
            "wandb_run": t.wandb_run,
            "error": t.error,
        }
        for t in search.trials
    ]
    return table(rows, TRIAL_COLUMNS)


def latest_search(instance: dg.DagsterInstance) -> tuple[HyperparameterSearch, str]:
    """The latest materialization of hyperparameter_search this instance recorded (its manifest, read from the
    study's folder in the artifact store) and the run that made it. trained_model reads it only when asked to
    (use_best_hyperparameters), so the search is no upstream of the training graph: a retrain or a
    ``*reference_profile`` selection never starts one."""
    from fakenews_ml.artifacts import MANIFEST, read_manifest

    event = instance.get_latest_materialization_event(hyperparameter_search.key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(
            "use_best_hyperparameters is set, but hyperparameter_search was never materialized in this instance: "
            "run it first (a persistent instance needs DAGSTER_HOME)"
        )
    folder = event.asset_materialization.metadata["location"].value
    found = read_manifest(folder, HyperparameterSearch)
    if found is None:
        raise dg.Failure(f"the latest hyperparameter_search ({folder}/{MANIFEST}) is missing from the artifact store")
    return found, event.run_id


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"optuna", "lightning", "wandb"},
    code_version=code_version("fakenews_ml.stages.search"),
    pool="gpu",  # trials train on the same device as trained_model: one at a time unless the pool allows more
    description="An Optuna study (TPE sampler, median pruner fed by a Lightning callback after every epoch) over "
    "learning rates, dropout, R-Drop alpha, weight decay and batch size: each trial a short training on a sample "
    "of tokenized_news, scored by validation ROC-AUC, logged to W&B as one group. The study is stored beside the "
    "Dagster instance (SQLite, or Postgres when deployed) under a name derived from the data and the settings, so "
    "runs on several workers share its trials; budget by trials and by time.",
)
def hyperparameter_search(
    context: dg.AssetExecutionContext,
    config: HyperparameterSearchConfig,
    tokenized_news: TokenizedNews,
    news_splits: NewsSplits,
    compute: ComputeResource,
    wandb: dg.ResourceParam[WandbSettings],
) -> dg.Output[HyperparameterSearch]:
    from fakenews_assets.study_storage import instance_study_storage
    from fakenews_ml.environment import study_storage_url
    from fakenews_ml.stages.search import search_hyperparameters

    manifest = search_hyperparameters(
        tokenized_news,
        news_splits,
        core(config, SearchConfig),
        study_storage_url(instance_study_storage()),
        compute=compute.train_fields(),
        wandb=wandb,
        progress=context.log.info,
    )
    context.log.info(
        "study %s: best trial %d (%s %.4f) of %d", manifest.study, manifest.best_trial, manifest.objective,
        manifest.best_value, len(manifest.trials),
    )  # fmt: skip
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(f"{manifest.key}:{manifest.best_trial}"),
        metadata={
            "reused": manifest.reused,
            "code_version": manifest.code_version,
            "study": manifest.study,
            "storage": manifest.storage,
            "objective": manifest.objective,
            "best_value": number(manifest.best_value),
            "best_trial": dg.MetadataValue.int(manifest.best_trial),
            "best_params": json_metadata(manifest.best_params),
            "trials": trial_table(manifest),
            "complete": dg.MetadataValue.int(manifest.complete),
            "pruned": dg.MetadataValue.int(manifest.pruned),
            "failed": dg.MetadataValue.int(manifest.failed),
            "new_trials": dg.MetadataValue.int(manifest.new_trials),
            "importance": json_metadata(manifest.importance or {"note": "needs two complete trials"}),
            "plots": plots_markdown(manifest.plots, "objective per trial and parameter importance"),
            "sample_rows": f"train {manifest.train_rows}, val {manifest.val_rows}",
            "wandb_group": manifest.wandb_group or "W&B was off",
            "seconds": number(manifest.seconds, 1),
            "location": location(manifest.folder),
        },
    )
