"""Deployment group: quantized_model -> production_model (the gated, atomic promotion) -> reference_profile."""

import dagster as dg

from fakenews_assets.configs import ProductionModelConfig, QuantizedModelConfig, ReferenceProfileConfig, core
from fakenews_assets.k8s import MODEL_CPU_STEP, PROMOTION_STEP
from fakenews_assets.metadata import json_metadata, location, number, sample_table, store_root, table
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import ProfileConfig, QuantizeConfig
from fakenews_ml.errors import PromotionRefused
from fakenews_ml.manifests import (
    DistilledModel,
    ModelEvaluation,
    NewsSplits,
    ProductionModel,
    QuantizedModel,
    ReferenceProfile,
    TrainedModel,
)
from fakenews_ml.tracking import WandbSettings

GROUP = "deployment"
OWNERS = ["team:ml-platform"]
PARITY_COLUMNS = {
    "variant": "string",
    "accuracy_delta": "float",
    "agreement": "float",
    "mean_abs_prob_diff": "float",
    "size_ratio": "float",
    "speedup_vs_fp32": "float",
    "passed": "bool",
}


def parity_table(manifest: QuantizedModel) -> dg.MetadataValue:
    rows = [{"variant": name, **p.model_dump()} for name, p in manifest.parity.items()]
    return table(rows, PARITY_COLUMNS)


@dg.asset(
    op_tags=MODEL_CPU_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch"},
    code_version=code_version("fakenews_ml.stages.quantization"),
    description="CPU serving variants of the trained bundle (dynamic int8, bf16), each a bundle of its own, with "
    "a parity report against fp32 on the frozen test split. Skipped when the bundle already has them.",
)
def quantized_model(
    config: QuantizedModelConfig, trained_model: TrainedModel, news_splits: NewsSplits
) -> dg.Output[QuantizedModel]:
    from fakenews_ml.stages.quantization import quantize_or_reuse

    manifest = quantize_or_reuse(trained_model, news_splits, core(config, QuantizeConfig))
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(",".join(f"{v}:{sha[:8]}" for v, sha in sorted(manifest.variant_weights.items()))),
        metadata={
            "reused": manifest.reused,
            "code_version": manifest.code_version,
            "recommended": manifest.recommended,
            "parity": parity_table(manifest),
            "bounds": json_metadata(manifest.bounds),
            "int8_smoothing": json_metadata(manifest.int8_smoothing or {"alpha": None}),
            "pruning": json_metadata(manifest.pruning or {"variants": None}),
            "serving": location(manifest.serving),
            **{f"{v}_agreement": number(p.agreement) for v, p in manifest.parity.items()},
        },
    )


@dg.asset_check(
    asset=quantized_model,
    blocking=True,
    description="Quantized variants vs fp32 on the frozen test split: accuracy drop at most max_accuracy_drop, "
    "prediction agreement at least min_agreement. No variant within bounds -> error (blocks promotion); some "
    "outside -> warning (those are never served: serving picks a variant within bounds).",
)
def quantization_parity(quantized_model: QuantizedModel) -> dg.AssetCheckResult:
    failed = quantized_model.failed_variants
    if not failed:
        description = "all variants within bounds"
    elif quantized_model.passed:
        description = f"{failed} outside bounds and not served; serving {quantized_model.recommended}"
    else:
        description = f"no variant within bounds: {failed}"
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if not quantized_model.passed else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "parity": parity_table(quantized_model),
            "bounds": json_metadata(quantized_model.bounds),
            "failed_variants": ", ".join(failed) or "none",
            "serving_variant": quantized_model.recommended,
            "eval_rows": dg.MetadataValue.int(quantized_model.eval_rows),
        },
    )


@dg.asset(
    op_tags=PROMOTION_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    code_version=code_version("fakenews_ml.stages.promotion"),
    description="The champion that serves predictions: the challenger is promoted (an atomic link swap, so a "
    "crash leaves the old champion serving) only if the gate passed, its quantized variants passed parity, and "
    "the champion is still the one it was compared with. All three are re-verified here. The champion is the "
    "challenger's distilled student (served as its int8 variant) instead when the student's check passes "
    "(within its bounds of the teacher on the frozen test split, re-verified here) and it is faster; otherwise "
    "the teacher. The decision and both models' numbers are in the metadata.",
)
def production_model(
    context: dg.AssetExecutionContext,
    config: ProductionModelConfig,
    model_evaluation: ModelEvaluation,
    quantized_model: QuantizedModel,
    distilled_model: DistilledModel,
    wandb: dg.ResourceParam[WandbSettings],
) -> dg.Output[ProductionModel]:
    from fakenews_ml.stages.promotion import promote_challenger

    try:
        manifest = promote_challenger(model_evaluation, quantized_model, note=config.note, distilled=distilled_model)
    except PromotionRefused as refused:
        raise dg.Failure(
            description=f"not promoted: {refused}",
            metadata={"gate": model_evaluation.gate.reason},
        ) from refused
    mirrored = mirror_to_wandb(context, manifest, wandb) if manifest.promoted else {}
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.version),
        metadata={
            "promoted": manifest.promoted,
            "reason": manifest.reason,
            "code_version": manifest.code_version,
            "champion_version": manifest.version,
            "champion": location(manifest.champion),
            "artifact_store": store_root(),  # the locations here are relative to it
            "previous_champion": location(manifest.previous),
            "serving_variant": manifest.serving_variant,
            "serving": location(manifest.serving),
            "gate": manifest.gate.reason,
            **served_metadata(manifest),
            "wandb_champion": dg.MetadataValue.json(mirrored or {"note": "not promoted now, or W&B off"}),
        },
    )


def served_metadata(manifest: ProductionModel) -> dict:
    """Which model serves (teacher or its student), why, and both models' numbers on the frozen test split."""
    decision = manifest.student
    if decision is None or decision.comparison is None:
        return {"served": manifest.served}
    c = decision.comparison
    return {
        "served": manifest.served,
        "serving_decision": decision.reason,
        "teacher_bundle": location(decision.teacher_bundle),
        "student_bundle": location(decision.student_bundle),
        "teacher_macro_f1": number(c.teacher.macro_f1),
        "teacher_roc_auc": number(c.teacher.roc_auc),
        "teacher_served_variant": c.teacher_speed.variant,
        "teacher_headlines_per_s": number(c.teacher_speed.rows_per_second, 1),
        "student_macro_f1": number(c.student.macro_f1),
        "student_roc_auc": number(c.student.roc_auc),
        "student_served_variant": c.student_speed.variant,
        "student_headlines_per_s": number(c.student_speed.rows_per_second, 1),
        "student_speedup": number(c.speedup, 2),
        "student_within_bounds": c.within_bounds,
    }


def mirror_to_wandb(context: dg.AssetExecutionContext, manifest: ProductionModel, wandb: WandbSettings) -> dict:
    """The promotion as W&B's ``champion`` alias on the bundle's artifact. The champion has already moved: a
    failure here is reported (a warning and the metadata), never allowed to undo or hide the promotion."""
    from fakenews_ml.environment import artifact_store
    from fakenews_ml.tracking import mirror_promotion

    try:
        return mirror_promotion(
            wandb,
            artifact_store().path(manifest.champion),
            previous=manifest.previous,
            reason=manifest.reason,
            aliases=(f"dagster-run-{context.run_id[:8]}",),
        )
    except Exception as problem:  # W&B unreachable, a broken offline folder, ...
        context.log.warning("promotion not mirrored to W&B: %s", problem)
        return {"error": f"{type(problem).__name__}: {problem}"}


@dg.asset(
    op_tags=MODEL_CPU_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "pandas"},
    code_version=code_version("fakenews_ml.stages.profile"),
    description="What normal traffic looks like to the production model: a seeded sample of validation titles "
    "with the serving variant's P(fake), decision and sentence embeddings, in the drift monitor's format.",
)
def reference_profile(
    config: ReferenceProfileConfig, production_model: ProductionModel, news_splits: NewsSplits
) -> dg.Output[ReferenceProfile]:
    from fakenews_ml.stages.profile import load_reference, profile_serving_model

    manifest = profile_serving_model(production_model, news_splits, core(config, ProfileConfig))
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.key),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(manifest.rows),
            "code_version": manifest.code_version,
            "location": location(manifest.folder),
            "split": manifest.split,
            "embedding_dim": dg.MetadataValue.int(manifest.embedding_dim),
            "model_version": manifest.model.version,
            "model_variant": manifest.model.variant,
            "summary": json_metadata(manifest.summary),
            "sample": sample_table(
                load_reference(manifest), columns=("title", "prob_fake", "predicted_label", "confidence")
            ),
        },
    )
