"""Monitoring group: prediction_log (observed) -> daily_predictions -> drift_report and prediction_log ->
live_quality (daily partitions), each check beside its asset. The drift sensor acts on the drift report's verdict."""

import warnings

import dagster as dg

from fakenews_assets.configs import DriftReportConfig, LiveQualityConfig, core
from fakenews_assets.k8s import MONITORING_STEP
from fakenews_assets.metadata import (
    drift_metadata,
    live_quality_metadata,
    log_state_metadata,
    number,
    traffic_metadata,
)
from fakenews_assets.resources import PredictionLogStore
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import DriftConfig, QualityBounds
from fakenews_ml.manifests import DailyPredictions, DriftReport, LiveQuality, ReferenceProfile
from fakenews_ml.monitoring.partitions_start import partitions_start
from fakenews_ml.monitoring.verdict import verdict_of

GROUP = "monitoring"
OWNERS = ["team:ml-platform"]


def daily_partitions(environ=None) -> dg.DailyPartitionsDefinition:
    """Days from where the data starts (FAKENEWS_PARTITIONS_START, else the day recorded under FAKENEWS_HOME on
    first load: fakenews_ml.monitoring.partitions_start); end_offset=1 makes today's partition exist, so traffic
    can be judged while the day is still running (the volume sensor)."""
    start = partitions_start(environ)
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1, timezone="UTC")


# Dagster fixes an asset's partitions when the code location loads, so they are decided here, once per load; the
# start is recorded on first load, so a reload (or another process loading this code) gets the same days.
DAILY_PARTITIONS = daily_partitions()


# observable_source_asset is marked beta in dagster 1.13: it is the documented way to model a store that
# something outside Dagster (the API) writes, so the warning is silenced here rather than at every load.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)

    @dg.observable_source_asset(
        group_name=GROUP,
        description="The prediction log the serving API (and `fakenews simulate`) writes: every prediction and "
        "feedback label. Observed, not materialized: its data version changes when rows are added (count, highest "
        "id, last timestamp). The prediction_volume_sensor observes it every minute; 'Observe' in the UI does too.",
    )
    def prediction_log(log_store: PredictionLogStore) -> dg.ObserveResult:
        from fakenews_ml.stages.monitoring import observe_prediction_log

        with log_store.open() as log:
            state = observe_prediction_log(log)
        return dg.ObserveResult(data_version=dg.DataVersion(state.data_version), metadata=log_state_metadata(state))


@dg.asset(
    op_tags=MONITORING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas", "sql"},
    code_version=code_version("fakenews_ml.stages.monitoring"),
    partitions_def=DAILY_PARTITIONS,
    deps=[prediction_log],
    description="One UTC day of logged predictions, frozen as parquet (content-addressed: the same rows keep the "
    "same data version), with the day's volume, fake rate, confidence and model versions.",
)
def daily_predictions(context: dg.AssetExecutionContext, log_store: PredictionLogStore) -> dg.Output[DailyPredictions]:
    from fakenews_ml.stages.monitoring import snapshot_daily_predictions

    with log_store.open() as log:
        manifest = snapshot_daily_predictions(log, context.partition_key)
    return dg.Output(manifest, data_version=dg.DataVersion(manifest.digest), metadata=traffic_metadata(manifest))


@dg.asset(
    op_tags=MONITORING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "evidently"},
    code_version=code_version("fakenews_ml.stages.monitoring"),
    partitions_def=DAILY_PARTITIONS,
    description="The day's traffic against the reference profile (Evidently): title text, length, word count, "
    "P(fake), confidence and predicted-label drift, and embedding drift on the profile's own model. Writes "
    "report.html and report.json under drift_reports/<day>/ in the artifact store. A day with fewer predictions "
    "than min_current_rows is materialized with status 'insufficient_data' and no report (and a warning check). "
    "Every day's folder keeps its verdict (manifest.json), which the dashboard shows (docs/monitoring.md).",
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftReportConfig,
    daily_predictions: DailyPredictions,
    reference_profile: ReferenceProfile,
) -> dg.Output[DriftReport]:
    from fakenews_ml.monitoring.drift import DriftInputError
    from fakenews_ml.stages.monitoring import report_drift

    try:
        manifest = report_drift(daily_predictions, reference_profile, core(config, DriftConfig))
    except DriftInputError as problem:  # a profile too small, a bad threshold: say so, no traceback hunt
        raise dg.Failure(description=f"no drift report for {context.partition_key}: {problem}") from None
    if manifest.status == "insufficient_data":
        context.log.warning(manifest.reason)
    return dg.Output(manifest, data_version=dg.DataVersion(manifest.key), metadata=drift_metadata(manifest))


# A check with its own daily partitions (so each day's verdict is recorded against its day) is a preview
# feature in dagster 1.13; without it the check would load every partition of drift_report at once.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)

    @dg.asset_check(
        asset=drift_report,
        partitions_def=DAILY_PARTITIONS,
        blocking=False,
        description="Drift thresholds (drift_report's config), one verdict per day: passed; failed with severity "
        "ERROR when the share of drifted features reaches drift_share or the embedding drift exceeds its threshold "
        "(the drift sensor answers with a retrain); failed with severity WARN when the day had too little traffic "
        "to judge (never a retrain). The same verdict as the report's status, the dashboard and the sensor.",
    )
    def drift_within_thresholds(drift_report: DriftReport) -> dg.AssetCheckResult:
        verdict = verdict_of(drift_report.status)  # the rules every view shares (fakenews_ml.monitoring.verdict)
        base = {
            "partition": drift_report.partition,
            "status": drift_report.status,
            "verdict": verdict.label,
            "retrain": verdict.retrain,
            "drifted": drift_report.drifted,
        }
        severity = dg.AssetCheckSeverity(verdict.severity)
        if not verdict.judged:
            return dg.AssetCheckResult(
                passed=verdict.passed,
                severity=severity,
                description=drift_report.reason,
                metadata={**base, "rows": dg.MetadataValue.int(drift_report.rows)},
            )
        emb = drift_report.embedding_drift
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=severity,
            description="; ".join(drift_report.reasons)
            if drift_report.drifted
            else f"drift share {drift_report.drift_share:.2f} < {drift_report.drift_share_threshold:.2f} and embedding "
            f"drift {emb.score:.3f} <= {emb.threshold:.3f}",
            metadata={
                **base,
                "drift_share": number(drift_report.drift_share),
                "drift_share_threshold": number(drift_report.drift_share_threshold),
                "embedding_drift": number(emb.score),
                "embedding_threshold": number(emb.threshold),
                "drifted_features": ", ".join(n for n, f in drift_report.features.items() if f.drifted) or "none",
                "n_current": dg.MetadataValue.int(drift_report.n_current or 0),
            },
        )


@dg.asset(
    op_tags=MONITORING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas", "sql"},
    code_version=code_version("fakenews_ml.stages.live_quality"),
    partitions_def=DAILY_PARTITIONS,
    deps=[prediction_log],
    description="Live quality: the day's predictions that people labelled (feedback linked to a logged "
    "prediction; the latest label wins) against what the model said: accuracy, macro-F1 and the confusion "
    "counts, overall and per model version. Re-materialize a day as labels arrive (the data version changes "
    "with the labelled rows).",
)
def live_quality(
    context: dg.AssetExecutionContext, config: LiveQualityConfig, log_store: PredictionLogStore
) -> dg.Output[LiveQuality]:
    from fakenews_ml.stages.live_quality import measure_live_quality

    with log_store.open() as log:
        manifest = measure_live_quality(log, context.partition_key, core(config, QualityBounds))
    return dg.Output(manifest, data_version=dg.DataVersion(manifest.digest), metadata=live_quality_metadata(manifest))


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)

    @dg.asset_check(
        asset=live_quality,
        partitions_def=DAILY_PARTITIONS,
        blocking=False,
        description="Live macro-F1 of the day's labelled traffic at or above live_quality's min_macro_f1 (a WARN "
        "when below: look at the confusion and the drift report). A day with fewer labelled rows than "
        "min_labelled_rows passes as not judged (most days have few labels).",
    )
    def live_quality_within_bounds(live_quality: LiveQuality) -> dg.AssetCheckResult:
        quality, bounds = live_quality.overall, live_quality.bounds
        if not live_quality.judged:
            description = (
                f"not judged: {quality.rows} labelled prediction(s) on {live_quality.day}, at least "
                f"{bounds.min_labelled_rows} needed (min_labelled_rows)"
            )
        else:
            relation = ">=" if live_quality.passed else "<"
            description = f"live macro-F1 {quality.macro_f1:.3f} {relation} {bounds.min_macro_f1:.3f} on {quality.rows} labelled rows"
        return dg.AssetCheckResult(
            passed=live_quality.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=description,
            metadata={
                "partition": live_quality.day,
                "judged": live_quality.judged,
                "labelled_rows": dg.MetadataValue.int(quality.rows),
                "macro_f1": number(quality.macro_f1),
                "min_macro_f1": number(bounds.min_macro_f1),
            },
        )
