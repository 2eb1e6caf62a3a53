"""Training group: trained_model (fine-tuned with Lightning; reused when nothing changed), distilled_model (a
smaller student of it, compared with it) and model_evaluation (challenger vs the current champion on the same
frozen test split), each blocking check beside its asset."""

import dagster as dg

from fakenews_assets.configs import DistilledModelConfig, ModelEvaluationConfig, TrainedModelConfig, core
from fakenews_assets.k8s import GPU_TRAINING_STEP, MODEL_CPU_STEP
from fakenews_assets.metadata import (
    history_table,
    json_metadata,
    location,
    metrics_table,
    number,
    plots_markdown,
    plotted_metrics,
    table,
)
from fakenews_assets.resources import ComputeResource, PredictionLogStore
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import DistillConfig, GateConfig, TrainConfig
from fakenews_ml.manifests import (
    DistilledModel,
    Metrics,
    ModelEvaluation,
    NewsSplits,
    QuantizedModel,
    TokenizedNews,
    TrainedModel,
)
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


STUDENT_COLUMNS = {
    "model": "string",
    "variant": "string",
    "macro_f1": "float",
    "roc_auc": "float",
    "accuracy": "float",
    "headlines_per_s": "float",
}


def comparison_table(distilled: DistilledModel) -> dg.MetadataValue:
    """The teacher and the student, fp32 and served, on the frozen test split, with their served speed."""
    c = distilled.comparison

    def row(model: str, variant: str, metrics: Metrics, speed: float | None) -> dict:
        return {
            "model": model,
            "variant": variant,
            "macro_f1": round(metrics.macro_f1, 4),
            "roc_auc": None if metrics.roc_auc is None else round(metrics.roc_auc, 4),
            "accuracy": round(metrics.accuracy, 4),
            "headlines_per_s": speed,
        }

    rows = [
        row(f"teacher ({distilled.teacher.layers} layers)", "fp32", c.teacher, None),
        row(f"teacher ({distilled.teacher.layers} layers)", c.teacher_speed.variant, c.teacher_served,
            c.teacher_speed.rows_per_second),
        row(f"student ({distilled.layers} layers)", "fp32", c.student_fp32, None),
        row(f"student ({distilled.layers} layers)", c.student_speed.variant, c.student, c.student_speed.rows_per_second),
    ]  # fmt: skip
    return table(rows, STUDENT_COLUMNS)


@dg.asset(
    op_tags=GPU_TRAINING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "lightning"},
    code_version=code_version("fakenews_ml.stages.distillation"),
    pool="gpu",
    description="A smaller student of trained_model (by default the first half of its encoder layers, with its own "
    "lexical half or none, whichever scores better on val), trained through the same training path on the "
    "teacher's blended probabilities (softened by a temperature) and the hard labels; a normal bundle at "
    "models/<key> whose lineage names its teacher, quantized to int8 with the parity report, and compared with "
    "the teacher on the frozen test split (served variants' quality and throughput, timed alternately). "
    "production_model serves it instead of the teacher when its check passes and it is faster.",
)
def distilled_model(
    context: dg.AssetExecutionContext,
    config: DistilledModelConfig,
    trained_model: TrainedModel,
    quantized_model: QuantizedModel,
    tokenized_news: TokenizedNews,
    news_splits: NewsSplits,
    compute: ComputeResource,
    log_store: PredictionLogStore,
) -> dg.Output[DistilledModel]:
    from fakenews_ml.stages.distillation import distill_or_reuse

    distill = core(config, DistillConfig)
    train_config = core(config, TrainConfig, **compute.train_fields())
    log_frame = None
    if distill.prediction_log_titles:
        with log_store.open() as log:
            log_frame = log.recent(distill.prediction_log_titles * 2)  # room for duplicates and split titles
    manifest = distill_or_reuse(
        trained_model, quantized_model, tokenized_news, news_splits, train_config, distill, log_frame=log_frame
    )
    c = manifest.comparison
    context.log.info("%s student %s: %s", "reused" if manifest.reused else "trained", manifest.student.bundle, c.reason)
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(f"{manifest.student.weights_sha256[:16]}:{c.test_digest[:8]}"),
        metadata={
            "reused": manifest.reused,
            "bundle": location(manifest.student.bundle),
            "version": manifest.student.version,
            "teacher_version": manifest.teacher.version,
            "teacher": location(manifest.teacher.bundle),
            "code_version": manifest.code_version,
            "layers": dg.MetadataValue.int(manifest.layers),
            "teacher_layers": dg.MetadataValue.int(manifest.teacher.layers),
            "parameters": dg.MetadataValue.int(manifest.parameters),
            "teacher_parameters": dg.MetadataValue.int(manifest.teacher.parameters),
            "lexical": manifest.lexical,
            "lexical_choice": dg.MetadataValue.json(manifest.lexical_choice or {"note": "as configured"}),
            "unlabelled_titles": dg.MetadataValue.int(manifest.unlabelled_titles),
            "comparison": comparison_table(manifest),
            "macro_f1_drop_points": number(100 * c.macro_f1_drop, 2),
            "roc_auc_drop_points": number(None if c.roc_auc_drop is None else 100 * c.roc_auc_drop, 2),
            "speedup": number(c.speedup, 2),
            "within_bounds": c.within_bounds,
            "faster": c.faster,
            "student_int8_agreement": number(manifest.quantized.parity["int8"].agreement)
            if "int8" in manifest.quantized.parity
            else "n/a",
            "serving": location(manifest.quantized.serving),
            "decision": c.reason,
            **plotted_metrics("student_test_", manifest.student.metrics.test),
        },
    )


@dg.asset_check(
    asset=distilled_model,
    blocking=True,
    additional_ins={"trained_model": dg.AssetIn("trained_model")},
    description="The student against its teacher on the frozen test split: its served variant's macro-F1 and "
    "ROC-AUC at most max_macro_f1_drop / max_roc_auc_drop below the teacher's. Outside the bounds the check fails "
    "(warning): production_model then keeps serving the teacher. A student that is not this teacher's, or whose "
    "int8 variant fails parity, is an error and blocks promotion.",
)
def student_within_teacher_bounds(distilled_model: DistilledModel, trained_model: TrainedModel) -> dg.AssetCheckResult:
    from fakenews_ml.stages.distillation import within_bounds

    c = distilled_model.comparison
    broken = []
    if distilled_model.teacher.bundle != trained_model.bundle:
        broken.append(f"distilled from {distilled_model.teacher.bundle}, not from {trained_model.bundle}")
    if distilled_model.layers >= distilled_model.teacher.layers:
        broken.append(
            f"{distilled_model.layers} layers is not smaller than the teacher's {distilled_model.teacher.layers}"
        )
    if not distilled_model.quantized.passed:
        broken.append(f"no student variant within parity bounds ({distilled_model.quantized.failed_variants})")
    passed = not broken and within_bounds(c)
    return dg.AssetCheckResult(
        passed=passed,
        # out of bounds: not served, the teacher is (a warning); broken evidence stops the graph (an error)
        severity=dg.AssetCheckSeverity.ERROR if broken else dg.AssetCheckSeverity.WARN,
        description="; ".join(broken) or c.reason,
        metadata={
            "teacher_macro_f1": number(c.teacher.macro_f1),
            "student_macro_f1": number(c.student.macro_f1),
            "teacher_roc_auc": number(c.teacher.roc_auc),
            "student_roc_auc": number(c.student.roc_auc),
            "macro_f1_drop": number(c.macro_f1_drop),
            "roc_auc_drop": number(c.roc_auc_drop),
            "max_macro_f1_drop": number(c.max_macro_f1_drop),
            "max_roc_auc_drop": number(c.max_roc_auc_drop),
            "student_variant": c.student_speed.variant,
            "speedup": number(c.speedup, 2),
            "test_rows": dg.MetadataValue.int(c.test_rows),
            "teacher_version": distilled_model.teacher.version,
            "student_version": distilled_model.student.version,
        },
    )
