"""Schedules: the daily drift report (running by default) and a weekly retrain (enable it in the UI, or with
`dagster schedule start weekly_retrain`)."""

from datetime import timedelta

import dagster as dg

from fakenews_assets.assets.monitoring import DAILY_PARTITIONS
from fakenews_assets.jobs import drift_job, retrain_job

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00 UTC, away from working hours
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekly: re-read the sources, retrain if anything changed, promote if the gates pass.",
)


@dg.schedule(
    name="daily_drift_schedule",
    job=drift_job,
    cron_schedule="15 0 * * *",  # 00:15 UTC: yesterday's traffic is complete
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: yesterday's (complete) traffic snapshotted and compared with the reference profile. "
    "Today's partition is covered as traffic arrives by the prediction_volume_sensor.",
)
def daily_drift_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    if not DAILY_PARTITIONS.has_partition_key(day):  # the first night after an install: the partitions start today
        return dg.SkipReason(f"{day} is before the first daily partition ({DAILY_PARTITIONS.start:%Y-%m-%d})")
    return dg.RunRequest(run_key=f"daily-drift-{day}", partition_key=day, tags={"fakenews/trigger": "schedule"})
