"""Deployment group: quantized_model -> production_model (the gated, atomic promotion) -> reference_profile."""

import dagster as dg

from fakenews_assets.configs import (
    ProfileSettings,
    PromotionConfig,
    QuantizationConfig,
    core,
)
from fakenews_assets.k8s import MODEL_CPU_STEP, PROMOTION_STEP
from fakenews_assets.metadata import sample_table
from fakenews_assets.resources import ModelStore
from fakenews_ml.config import ProfileConfig, QuantizeConfig
from fakenews_ml.errors import PromotionRefused

GROUP = "deployment"
OWNERS = ["team:ml-platform"]


@dg.asset(
    op_tags=MODEL_CPU_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch"},
    code_version="1",
    description="CPU serving variants of the trained bundle (dynamic int8, bf16), each a bundle of its own, with "
    "a parity report against fp32 on the frozen test split. Skipped when the bundle already has them.",
)
def quantized_model(
    config: QuantizationConfig, trained_model: dict, news_splits: dict, model_store: ModelStore
) -> dg.Output[dict]:
    from fakenews_ml.stages.data import load_split
    from fakenews_ml.stages.deployment import quantize_or_reuse

    manifest = quantize_or_reuse(trained_model, load_split(news_splits, "test"), core(config, QuantizeConfig))
    report = manifest["report"]
    rows = {
        v: {k: report[v][k] for k in ("accuracy_delta", "agreement", "size_ratio", "speedup_vs_fp32", "passed")}
        for v in manifest["variants"]
    }
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(
            ",".join(f"{v}:{sha[:8]}" for v, sha in sorted(manifest["variant_weights"].items()))
        ),
        metadata={
            "reused": manifest["reused"],
            "recommended": manifest["recommended"],
            "parity": dg.MetadataValue.json(rows),
            "bounds": dg.MetadataValue.json(manifest["bounds"]),
            "int8_smoothing": dg.MetadataValue.json(report.get("int8_smoothing") or {"alpha": None}),
            "serving_path": dg.MetadataValue.path(manifest["serving_path"]),
            "bundle_uri": model_store.publish_bundle(manifest["bundle_path"]),
            **{f"{v}_agreement": dg.MetadataValue.float(r["agreement"]) for v, r in rows.items()},
        },
    )


@dg.asset(
    op_tags=PROMOTION_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    code_version="1",
    description="The champion that serves predictions: the challenger is promoted (an atomic symlink swap, so a "
    "crash leaves the old champion serving) only if the gate passed, its quantized variants passed parity, and "
    "the champion is still the one it was compared with. All three are re-verified here.",
)
def production_model(
    config: PromotionConfig, model_evaluation: dict, quantized_model: dict, model_store: ModelStore
) -> dg.Output[dict]:
    from fakenews_ml.stages.deployment import promote_challenger

    try:
        manifest = promote_challenger(model_evaluation, quantized_model, note=config.note)
    except PromotionRefused as refused:
        raise dg.Failure(
            description=f"not promoted: {refused}", metadata={"gate": dg.MetadataValue.json(model_evaluation["gate"])}
        ) from refused
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["version"]),
        metadata={
            "promoted": manifest["promoted"],
            "reason": manifest["reason"],
            "champion_version": manifest["version"],
            "champion_path": dg.MetadataValue.path(manifest["champion_path"]),
            "previous_champion": manifest["previous_path"] or "none",
            "serving_variant": manifest["serving_variant"],
            "serving_path": dg.MetadataValue.path(manifest["serving_path"]),
            "gate": dg.MetadataValue.json(manifest["gate"]),
            "published": model_store.publish_champion(manifest) or "local only",
        },
    )


@dg.asset(
    op_tags=MODEL_CPU_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pytorch", "pandas"},
    code_version="1",
    description="What normal traffic looks like to the production model: a seeded sample of training titles with "
    "the serving variant's P(fake), decision and sentence embeddings, in the drift monitor's format.",
)
def reference_profile(config: ProfileSettings, production_model: dict, news_splits: dict) -> dg.Output[dict]:
    from fakenews_ml.stages.profile import load_reference, profile_serving_model

    manifest = profile_serving_model(production_model, news_splits, core(config, ProfileConfig))
    frame = load_reference(manifest)
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["key"]),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(manifest["rows"]),
            "path": dg.MetadataValue.path(manifest["path"]),
            "split": manifest["split"],
            "embedding_dim": dg.MetadataValue.int(manifest["embedding_dim"]),
            "model_version": manifest["model"]["version"],
            "summary": dg.MetadataValue.json(manifest["summary"]),
            "sample": sample_table(frame, columns=("title", "prob_fake", "predicted_label", "confidence")),
        },
    )
