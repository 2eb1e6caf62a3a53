"""A small stand-in Dagster code location for the dashboard's live tests: the same kinds of things the
real graph has (a blocking check that fails, a daily-partitioned drift report, a running sensor, a
schedule, a retrain job), cheap enough to run in a second. Started by ``dagster dev -f`` in the tests."""

import warnings

import dagster as dg


@dg.asset(group_name="data")
def raw_news():
    return 3


@dg.asset(group_name="data", deps=[raw_news])
def validated_news():
    return 3


@dg.asset_check(asset=validated_news, blocking=True, description="the quality suite (stand-in)")
def validated_news_quality():
    return dg.AssetCheckResult(passed=True, description="all expectations met")


@dg.asset(group_name="deployment", deps=[validated_news])
def production_model():
    return "model"


@dg.asset_check(asset=production_model, description="champion/challenger gate (stand-in)")
def production_model_gate():
    return dg.AssetCheckResult(passed=False, description="challenger macro-F1 0.71 < champion 0.74: kept the champion")


DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


@dg.asset(group_name="monitoring", partitions_def=DAILY)
def drift_report():
    return 0.1


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)

    @dg.asset_check(asset=drift_report, partitions_def=DAILY, description="drift thresholds (stand-in)")
    def drift_within_thresholds(context: dg.AssetCheckExecutionContext):
        """The verdict of the day's real drift report under FAKENEWS_HOME, by the project's own rules."""
        from fakenews_ml.monitoring.drift_store import drift_history
        from fakenews_ml.monitoring.verdict import verdict_of

        row = drift_history().set_index("partition").loc[context.partition_key]
        verdict = verdict_of(row["status"])
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity(verdict.severity),
            description=row["reason"] or f"verdict: {verdict.label}",
            metadata={"status": row["status"], "verdict": verdict.label, "retrain": verdict.retrain},
        )


retrain = dg.define_asset_job("retrain", selection=dg.AssetSelection.assets(production_model).upstream())


@dg.sensor(job=retrain, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def drift_sensor(context):
    return dg.SkipReason("the latest drift check passed")


@dg.schedule(job=retrain, cron_schedule="0 3 * * 1")
def weekly_retrain(context):
    return dg.RunRequest()


defs = dg.Definitions(
    assets=[raw_news, validated_news, production_model, drift_report],
    asset_checks=[validated_news_quality, production_model_gate, drift_within_thresholds],
    jobs=[retrain],
    sensors=[drift_sensor],
    schedules=[weekly_retrain],
)
