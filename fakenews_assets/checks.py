"""Asset checks. The blocking ones stop the graph: when one fails, nothing downstream of its asset runs in
that run, so bad data or a worse model never reaches production. The drift check is not blocking (nothing is
downstream of drift_report): the drift sensor acts on its failures."""

import warnings

import dagster as dg

from fakenews_assets.assets.data import news_splits, tokenized_news, validated_news
from fakenews_assets.assets.deployment import quantized_model
from fakenews_assets.assets.monitoring import (
    DAILY_PARTITIONS,
    drift_report,
    feedback_labels,
)
from fakenews_assets.assets.training import model_evaluation, trained_model
from fakenews_assets.metadata import check_table


@dg.asset_check(
    asset=validated_news,
    blocking=True,
    description="Great Expectations suite: columns, nulls, label set {0,1}, title length bounds, duplicate rate, "
    "class balance. Fails -> nothing downstream runs and the production model stays as it was.",
)
def news_quality_suite(validated_news: dict) -> dg.AssetCheckResult:
    from fakenews_ml.stages.data import run_validation_suite

    report = run_validation_suite(validated_news)
    rows = [
        {
            "check": o.check,
            "passed": o.success,
            "observed": o.observed_value,
            "unexpected": o.unexpected_count,
            "message": "" if o.success else o.message,
        }
        for o in report.results
    ]
    return dg.AssetCheckResult(
        passed=report.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=report.summary(),
        metadata={
            "rows": dg.MetadataValue.int(report.rows),
            "failed_checks": dg.MetadataValue.json([o.check for o in report.failed()]),
            "results": check_table(rows, ["check", "passed", "observed", "unexpected", "message"]),
            "report": dg.MetadataValue.json(report.to_dict()),
        },
    )


@dg.asset_check(
    asset=news_splits,
    blocking=True,
    description="No normalised title appears in two splits (re-checked on the written split files).",
)
def splits_do_not_leak(news_splits: dict) -> dg.AssetCheckResult:
    from fakenews_ml.stages.data import check_split_leakage

    result = check_split_leakage(news_splits)
    return dg.AssetCheckResult(
        passed=result["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "shared_titles": dg.MetadataValue.json(result["shared_titles"]),
            "examples": dg.MetadataValue.json(result["examples"]),
            "rows": dg.MetadataValue.json(result["rows"]),
        },
    )


@dg.asset_check(
    asset=trained_model,
    blocking=True,
    additional_ins={"tokenized_news": dg.AssetIn(tokenized_news.key)},
    description="Model sanity: weights intact and finite, logits of shape (n, 2), probabilities in [0, 1] summing "
    "to 1, on validation rows.",
)
def model_is_sane(trained_model: dict, tokenized_news: dict) -> dg.AssetCheckResult:
    from fakenews_ml.data.tokenize import TokenizedSplit
    from fakenews_ml.stages.training import check_model_sanity

    result = check_model_sanity(
        trained_model["bundle_path"], TokenizedSplit.load(tokenized_news["splits"]["val"]["path"])
    )
    return dg.AssetCheckResult(
        passed=result["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "nonfinite_values": dg.MetadataValue.int(result["nonfinite_values"]),
            "output_shape": str(tuple(result["output_shape"])),
            "expected_shape": str(tuple(result["expected_shape"])),
            "prob_range": f"[{result['prob_min']}, {result['prob_max']}]",
            "details": dg.MetadataValue.json(result),
        },
    )


@dg.asset_check(
    asset=quantized_model,
    blocking=True,
    description="Quantized variants vs fp32 on the frozen test split: accuracy drop at most max_accuracy_drop, "
    "prediction agreement at least min_agreement. No variant within bounds -> error (blocks promotion); some "
    "outside -> warning (those are never served: serving picks a variant within bounds).",
)
def quantization_parity(quantized_model: dict) -> dg.AssetCheckResult:
    report, bounds = quantized_model["report"], quantized_model["bounds"]
    rows = [
        {
            "variant": v,
            "accuracy_delta": report[v]["accuracy_delta"],
            "agreement": report[v]["agreement"],
            "max_abs_prob_diff": report[v]["max_abs_prob_diff"],
            "passed": report[v]["passed"],
        }
        for v in quantized_model["variants"]
    ]
    failed = quantized_model["failed_variants"]
    if not failed:
        description = "all variants within bounds"
    elif quantized_model["passed"]:
        description = f"{failed} outside bounds and not served; serving {quantized_model['recommended']}"
    else:
        description = f"no variant within bounds: {failed}"
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if not quantized_model["passed"] else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "parity": check_table(rows, ["variant", "accuracy_delta", "agreement", "max_abs_prob_diff", "passed"]),
            "bounds": dg.MetadataValue.json(bounds),
            "failed_variants": dg.MetadataValue.json(failed),
            "serving_variant": quantized_model["recommended"],
            "eval_rows": dg.MetadataValue.int(report["eval_rows"]),
        },
    )


@dg.asset_check(
    asset=model_evaluation,
    blocking=True,
    description="Champion/challenger gate: on the same frozen test split, the challenger's metric must be at least "
    "the champion's minus the tolerance (model_evaluation's config). Fails -> no promotion.",
)
def challenger_not_worse(model_evaluation: dict) -> dg.AssetCheckResult:
    gate = model_evaluation["gate"]
    return dg.AssetCheckResult(
        passed=gate["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate["reason"],
        metadata={
            "metric": gate["metric"],
            "challenger": dg.MetadataValue.float(gate["challenger"]) if gate["challenger"] is not None else "none",
            "champion": dg.MetadataValue.float(gate["champion"]) if gate["champion"] is not None else "none",
            "margin": dg.MetadataValue.float(gate["margin"]) if gate["margin"] is not None else "none",
            "tolerance": dg.MetadataValue.float(gate["tolerance"]),
            "challenger_version": model_evaluation["challenger"]["version"],
            "champion_version": model_evaluation["champion"]["version"] if model_evaluation["champion"] else "none",
        },
    )


@dg.asset_check(
    asset=feedback_labels,
    blocking=True,
    description="The raw-data Great Expectations suite on the feedback labels (bounds relaxed only where a small "
    "labelled batch differs: one row is enough, one class is fine). Fails -> the labels are not merged and "
    "nothing is trained on them; no labels at all passes (nothing to merge).",
)
def feedback_quality_suite(feedback_labels: dict) -> dg.AssetCheckResult:
    from fakenews_ml.stages.monitoring import run_feedback_suite

    report = run_feedback_suite(feedback_labels)
    rows = [
        {"check": o.check, "passed": o.success, "observed": o.observed_value, "message": "" if o.success else o.message}
        for o in report.results
    ]
    return dg.AssetCheckResult(
        passed=report.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=report.summary() if report.rows else "no feedback labels yet: nothing to merge",
        metadata={
            "rows": dg.MetadataValue.int(report.rows),
            "failed_checks": dg.MetadataValue.json([o.check for o in report.failed()]),
            "results": check_table(rows, ["check", "passed", "observed", "message"]),
        },
    )


# A check with its own daily partitions (so each day's verdict is recorded against its day) is a preview
# feature in dagster 1.13; without it the check would load every partition of drift_report at once.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)

    @dg.asset_check(
        asset=drift_report,
        partitions_def=DAILY_PARTITIONS,
        blocking=False,
        description="Drift thresholds (drift_report's config): fails with severity ERROR when the share of drifted "
        "features reaches drift_share or the embedding drift exceeds its threshold, which the drift sensor answers "
        "with a retrain. A day with too little traffic to judge is a WARN, never a retrain.",
    )
    def drift_within_thresholds(context: dg.AssetCheckExecutionContext, drift_report: dict) -> dg.AssetCheckResult:
        base = {
            "partition": drift_report["partition"],
            "status": drift_report["status"],
            "drifted": drift_report["drifted"],
        }
        if drift_report["status"] == "insufficient_data":
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=drift_report["reason"],
                metadata={**base, "rows": dg.MetadataValue.int(drift_report["rows"])},
            )
        embedding = drift_report["embedding_drift"]
        return dg.AssetCheckResult(
            passed=not drift_report["drifted"],
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(drift_report["reasons"])
            if drift_report["drifted"]
            else f"drift share {drift_report['drift_share']:.2f} < {drift_report['drift_share_threshold']:.2f} and embedding "
            f"drift {embedding['score']:.3f} <= {embedding['threshold']:.3f}",
            metadata={
                **base,
                "drift_share": dg.MetadataValue.float(drift_report["drift_share"]),
                "drift_share_threshold": dg.MetadataValue.float(drift_report["drift_share_threshold"]),
                "embedding_drift": dg.MetadataValue.float(embedding["score"]),
                "embedding_threshold": dg.MetadataValue.float(embedding["threshold"]),
                "drifted_features": dg.MetadataValue.json(
                    [n for n, f in drift_report["features"].items() if f["drifted"]]
                ),
                "n_current": dg.MetadataValue.int(drift_report["n_current"]),
            },
        )


ASSET_CHECKS = [
    news_quality_suite,
    splits_do_not_leak,
    model_is_sane,
    quantization_parity,
    challenger_not_worse,
    feedback_quality_suite,
    drift_within_thresholds,
]
