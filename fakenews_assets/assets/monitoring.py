"""Monitoring group: prediction_log (observed) -> daily_predictions -> drift_report (daily partitions), and
feedback_labels, which the next training run merges into validated_news."""

import warnings

import dagster as dg

from fakenews_assets.configs import DriftSettings, core
from fakenews_assets.k8s import DATA_STEP, MONITORING_STEP
from fakenews_assets.metadata import (
    class_balance,
    drift_metadata,
    log_state_metadata,
    sample_table,
    traffic_metadata,
)
from fakenews_assets.resources import PredictionLogStore
from fakenews_ml.artifacts import load_frame
from fakenews_ml.config import DriftConfig

GROUP = "monitoring"
OWNERS = ["team:ml-platform"]
# Early enough for replayed history (`fakenews simulate --model ... --day 2024-05-01`); end_offset=1 makes
# today's partition exist, so traffic can be judged while the day is still running (the volume sensor).
PARTITIONS_START = "2024-01-01"
DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1, timezone="UTC")


def _log_state(log_store: PredictionLogStore) -> dict:
    from fakenews_ml.stages.monitoring import observe_prediction_log

    with log_store.open() as log:
        return observe_prediction_log(log)


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
        state = _log_state(log_store)
        return dg.ObserveResult(data_version=dg.DataVersion(state["data_version"]), metadata=log_state_metadata(state))


@dg.asset(
    op_tags=MONITORING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas", "sql"},
    code_version="1",
    partitions_def=DAILY_PARTITIONS,
    deps=[prediction_log],
    description="One UTC day of logged predictions, frozen as parquet (content-addressed: the same rows keep the "
    "same data version), with the day's volume, fake rate, confidence and model versions.",
)
def daily_predictions(context: dg.AssetExecutionContext, log_store: PredictionLogStore) -> dg.Output[dict]:
    from fakenews_ml.stages.monitoring import snapshot_daily_predictions

    with log_store.open() as log:
        manifest = snapshot_daily_predictions(log, context.partition_key)
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["digest"]), metadata=traffic_metadata(manifest))


@dg.asset(
    op_tags=MONITORING_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "evidently"},
    code_version="1",
    partitions_def=DAILY_PARTITIONS,
    description="The day's traffic against the reference profile (Evidently): title text, length, word count, "
    "P(fake), confidence and predicted-label drift, and embedding drift on the profile's own model. Writes "
    "report.html and report.json under FAKENEWS_HOME/drift_reports/<day>/. A day with fewer predictions than "
    "min_current_rows is materialized with status 'insufficient_data' and no report (and a warning check).",
)
def drift_report(
    context: dg.AssetExecutionContext, config: DriftSettings, daily_predictions: dict, reference_profile: dict
) -> dg.Output[dict]:
    from fakenews_ml.monitoring.drift import DriftInputError
    from fakenews_ml.stages.monitoring import report_drift

    try:
        manifest = report_drift(daily_predictions, reference_profile, core(config, DriftConfig))
    except DriftInputError as problem:  # a profile too small, a bad threshold: say so, no traceback hunt
        raise dg.Failure(description=f"no drift report for {context.partition_key}: {problem}") from None
    if manifest["status"] == "insufficient_data":
        context.log.warning(manifest["reason"])
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]), metadata=drift_metadata(manifest))


@dg.asset(
    op_tags=DATA_STEP,
    group_name="data",
    owners=OWNERS,
    kinds={"python", "pandas"},
    code_version="1",
    deps=[prediction_log],
    description="Labels people gave back (dashboard, API, `fakenews feedback import`) as news rows with source "
    "'feedback:<origin>', one per headline (the latest label wins). Checked by the raw-data Great Expectations "
    "suite (blocking) and merged into validated_news, so the next training run learns from them.",
)
def feedback_labels(log_store: PredictionLogStore) -> dg.Output[dict]:
    from fakenews_ml.stages.monitoring import snapshot_feedback

    with log_store.open() as log:
        manifest = snapshot_feedback(log)
    frame = load_frame(manifest["path"])
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["digest"]),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(manifest["rows"]),
            **class_balance(manifest["label_counts"]),
            "rows_by_source": dg.MetadataValue.json(manifest["rows_by_source"]),
            "path": dg.MetadataValue.path(manifest["path"]),
            "sample": sample_table(frame),
        },
    )
