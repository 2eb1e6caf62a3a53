"""Training group: trained_model (fine-tuned with Lightning; reused when nothing changed) and
model_evaluation (challenger vs the current champion on the same frozen test split)."""

import dagster as dg

from fakenews_assets.configs import EvaluationConfig, TrainingConfig, core
from fakenews_assets.k8s import GPU_TRAINING_STEP, MODEL_CPU_STEP
from fakenews_assets.metadata import metrics_table, plots_markdown, scalar_metrics
from fakenews_assets.resources import ComputeResource, ModelStore, WandbTracker
from fakenews_ml.config import GateConfig, TrainConfig

GROUP = "training"
OWNERS = ["team:ml-platform"]
# Part of the bundle cache key: bump it when a change to the training code should retrain.
TRAINED_MODEL_CODE_VERSION = "1"


@dg.asset(
    op_tags=GPU_TRAINING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "lightning", "wandb"},
    code_version=TRAINED_MODEL_CODE_VERSION,
    pool="gpu",
    description="The encoder fine-tuned on the train split (early stopping on val, threshold tuned on val), as a "
    "safetensors bundle under FAKENEWS_HOME/models/<cache key>. The key hashes the tokens, the model and training "
    "settings and this asset's code version: an intact bundle for the same key is reused, not retrained.",
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    tokenized_news: dict,
    news_splits: dict,
    compute: ComputeResource,
    wandb: dg.ResourceParam[WandbTracker],
    model_store: ModelStore,
) -> dg.Output[dict]:
    from fakenews_ml.stages.training import model_config_for, train_or_reuse

    train_config = core(config, TrainConfig, **compute.train_fields())
    model_config = model_config_for(tokenized_news, config.pooling, config.dropout)
    run = wandb.training_run(
        {
            "model": model_config.model_dump(),
            "train": train_config.model_dump(),
            "tokens": tokenized_news["fingerprint"],
        }
    )
    manifest = None
    try:
        manifest = train_or_reuse(
            tokenized_news,
            news_splits,
            model_config,
            train_config,
            code_version=TRAINED_MODEL_CODE_VERSION,
            make_logger=run.start,
        )
    finally:
        wandb_run = run.finish(manifest)
    context.log.info("%s bundle %s", "reused" if manifest["reused"] else "trained", manifest["bundle_path"])
    test = manifest["metrics"]["test"]
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["weights_sha256"][:16]),
        metadata={
            "reused": manifest["reused"],
            "bundle_path": dg.MetadataValue.path(manifest["bundle_path"]),
            "bundle_uri": model_store.publish_bundle(manifest["bundle_path"]),
            "version": manifest["version"],
            "cache_key": manifest["cache_key"],
            "threshold": dg.MetadataValue.float(manifest["threshold"]),
            **scalar_metrics("test_", test),
            "metrics": metrics_table({"val": manifest["metrics"]["val"], "test": test}),
            "plots": plots_markdown(manifest["plots"], "held-out test split"),
            "training": dg.MetadataValue.json({k: v for k, v in manifest["training"].items() if k != "history"}),
            "history": dg.MetadataValue.json(manifest["training"].get("history") or []),
            "compute": dg.MetadataValue.json(compute.describe()),
            "wandb_run": dg.MetadataValue.json(
                wandb_run or manifest["wandb_run"] or {"note": "W&B was off when this bundle was trained"}
            ),
            **(
                {"wandb_url": dg.MetadataValue.url(url)}
                if (url := (wandb_run or manifest["wandb_run"]).get("url"))
                else {}
            ),
        },
    )


@dg.asset(
    op_tags=MODEL_CPU_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "scikitlearn"},
    code_version="1",
    description="The challenger (trained_model) and the current champion scored on the same frozen test split "
    "(news_splits' test split), with the champion/challenger gate's verdict.",
)
def model_evaluation(config: EvaluationConfig, trained_model: dict, news_splits: dict) -> dg.Output[dict]:
    from fakenews_ml.stages.deployment import evaluate_challenger

    manifest = evaluate_challenger(trained_model, news_splits, core(config, GateConfig))
    challenger, champion, gate = manifest["challenger"], manifest["champion"], manifest["gate"]
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["key"]),
        metadata={
            "gate_passed": gate["passed"],
            "gate": gate["reason"],
            "champion_version": champion["version"] if champion else "none",
            "challenger_version": challenger["version"],
            **scalar_metrics("challenger_", challenger["metrics"]),
            **(scalar_metrics("champion_", champion["metrics"]) if champion else {}),
            "metrics": metrics_table(
                {"challenger": challenger["metrics"], "champion": champion["metrics"] if champion else None}
            ),
            "challenger_plots": plots_markdown(challenger["metrics"].get("plots", {}), "challenger"),
            **(
                {"champion_plots": plots_markdown(champion["metrics"].get("plots", {}), "champion")}
                if champion and not champion["same_as_challenger"]
                else {}
            ),
            "test_rows": dg.MetadataValue.int(manifest["test_rows"]),
        },
    )
