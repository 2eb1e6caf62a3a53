"""Training group: trained_model (fine-tuned with Lightning; reused when nothing changed) and model_evaluation
(challenger vs the current champion on the same frozen test split), each blocking check beside its asset."""

import dagster as dg

from fakenews_assets.configs import ModelEvaluationConfig, TrainedModelConfig, core
from fakenews_assets.k8s import GPU_TRAINING_STEP, MODEL_CPU_STEP
from fakenews_assets.metadata import (
    history_table,
    json_metadata,
    location,
    metrics_table,
    number,
    plots_markdown,
    plotted_metrics,
)
from fakenews_assets.resources import ComputeResource
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import GateConfig, TrainConfig
from fakenews_ml.manifests import ModelEvaluation, NewsSplits, TokenizedNews, TrainedModel
from fakenews_ml.tracking import WandbSettings

GROUP = "training"
OWNERS = ["team:ml-platform"]


@dg.asset(
    op_tags=GPU_TRAINING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "lightning", "wandb"},
    code_version=code_version("fakenews_ml.stages.training"),
    pool="gpu",
    description="The encoder fine-tuned on the train split (early stopping on val, threshold tuned on val), as a "
    "safetensors bundle at models/<cache key> in the artifact store. The key hashes the tokens, the model and "
    "training settings and the training code's version: an intact bundle for the same key is reused, not retrained.",
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    tokenized_news: TokenizedNews,
    news_splits: NewsSplits,
    compute: ComputeResource,
    wandb: dg.ResourceParam[WandbSettings],
) -> dg.Output[TrainedModel]:
    from fakenews_assets.assets.model_lab import latest_search
    from fakenews_ml.environment import artifact_store
    from fakenews_ml.stages.search import best_hyperparameters, search_lineage
    from fakenews_ml.stages.training import model_config_for, train_or_reuse
    from fakenews_ml.tracking import TrainingRun

    train_config = core(config, TrainConfig, **compute.train_fields())
    model_config = model_config_for(tokenized_news, config.pooling, config.dropout)
    search = None
    if config.use_best_hyperparameters:
        found, search_run = latest_search(context.instance)
        model_config, train_config = best_hyperparameters(found, model_config, train_config)
        search = {**search_lineage(found, tokenized_news), "dagster_run_id": search_run}
        context.log.info("hyperparameters of %s trial %d: %s", search["study"], search["trial"], search["params"])
        if not search["searched_on_these_tokens"]:
            context.log.warning("the search ran on other tokens (%s)", found.tokenized_fingerprint)
    run = TrainingRun(
        wandb,
        {
            "model": model_config.model_dump(),
            "train": train_config.model_dump(),
            "tokens": tokenized_news.fingerprint,
            "hyperparameter_search": search,
        },
        aliases=(f"dagster-run-{context.run_id[:8]}",),  # dagster-wandb's alias for what a run logged
    )
    manifest = None
    try:
        manifest = train_or_reuse(
            tokenized_news, news_splits, model_config, train_config, make_logger=run.start, search=search
        )
    finally:
        wandb_run = run.finish(manifest, artifact_store().path(manifest.bundle) if manifest else None)
    if wandb_run:
        manifest = manifest.model_copy(update={"wandb_run": wandb_run})
    context.log.info("%s bundle %s", "reused" if manifest.reused else "trained", manifest.bundle)
    url = (manifest.wandb_run or {}).get("url")
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.weights_sha256[:16]),
        metadata={
            "reused": manifest.reused,
            "bundle": location(manifest.bundle),
            "version": manifest.version,
            "code_version": manifest.code_version,
            "cache_key": manifest.cache_key,
            "threshold": number(manifest.threshold),
            **plotted_metrics("test_", manifest.metrics.test),
            "metrics": metrics_table({"val": manifest.metrics.val, "test": manifest.metrics.test}),
            "history": history_table(manifest.training.history),
            "plots": plots_markdown(manifest.plots, "held-out test split"),
            "precision": manifest.training.precision or "unknown",
            "samples_per_second": number(manifest.training.samples_per_second, 1),
            "fit_seconds": number(manifest.training.fit_seconds, 1),
            "compute": json_metadata(compute.describe()),
            "hyperparameters_from": f"{search['study']} trial {search['trial']}" if search else "this config",
            **({"hyperparameter_search_run": dg.MetadataValue.dagster_run(search["dagster_run_id"])} if search else {}),
            "wandb_run": json_metadata(manifest.wandb_run or {"note": "W&B was off when this bundle was trained"}),
            **({"wandb_url": dg.MetadataValue.url(url)} if url else {}),
        },
    )


@dg.asset_check(
    asset=trained_model,
    blocking=True,
    additional_ins={"tokenized_news": dg.AssetIn("tokenized_news")},
    description="Model sanity: weights intact and finite, logits of shape (n, 2), probabilities in [0, 1] summing "
    "to 1, on validation rows.",
)
def model_is_sane(trained_model: TrainedModel, tokenized_news: TokenizedNews) -> dg.AssetCheckResult:
    from fakenews_ml.stages.training import check_model_sanity

    result = check_model_sanity(trained_model, tokenized_news)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "nonfinite_values": dg.MetadataValue.int(result.nonfinite_values),
            "output_shape": str(tuple(result.output_shape)),
            "expected_shape": str(tuple(result.expected_shape)),
            "prob_range": f"[{result.prob_min:.4f}, {result.prob_max:.4f}]",
            "parameters": dg.MetadataValue.int(result.parameters),
            "probe_rows": dg.MetadataValue.int(result.probe_rows),
        },
    )


@dg.asset(
    op_tags=MODEL_CPU_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "scikitlearn"},
    code_version=code_version("fakenews_ml.stages.evaluation"),
    description="The challenger (trained_model) and the current champion scored on the same frozen test split "
    "(news_splits' test split), with the champion/challenger gate's verdict.",
)
def model_evaluation(
    config: ModelEvaluationConfig, trained_model: TrainedModel, news_splits: NewsSplits
) -> dg.Output[ModelEvaluation]:
    from fakenews_ml.stages.evaluation import evaluate_challenger

    manifest = evaluate_challenger(trained_model, news_splits, core(config, GateConfig))
    challenger, champion, gate = manifest.challenger, manifest.champion, manifest.gate
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.key),
        metadata={
            "gate_passed": gate.passed,
            "gate": gate.reason,
            "code_version": manifest.code_version,
            "champion_version": champion.version if champion else "none",
            "challenger_version": challenger.version,
            **plotted_metrics("challenger_", challenger.metrics),
            **plotted_metrics("champion_", champion.metrics if champion else None),
            "metrics": metrics_table(
                {"challenger": challenger.metrics, "champion": champion.metrics if champion else None}
            ),
            "challenger_plots": plots_markdown(challenger.plots, "challenger"),
            **(
                {"champion_plots": plots_markdown(champion.plots, "champion")}
                if champion and not manifest.champion_is_challenger
                else {}
            ),
            "test_rows": dg.MetadataValue.int(manifest.test_rows),
        },
    )


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    description="Champion/challenger gate: on the same frozen test split, the challenger's metric must be at least "
    "the champion's minus the tolerance (model_evaluation's config). Fails -> no promotion.",
)
def challenger_not_worse(model_evaluation: ModelEvaluation) -> dg.AssetCheckResult:
    gate = model_evaluation.gate
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.reason,
        metadata={
            "metric": gate.metric,
            "challenger": number(gate.challenger),
            "champion": number(gate.champion),
            "margin": number(gate.margin),
            "tolerance": number(gate.tolerance),
            "challenger_version": model_evaluation.challenger.version,
            "champion_version": model_evaluation.champion.version if model_evaluation.champion else "none",
        },
    )
