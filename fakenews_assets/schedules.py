"""Automation: a weekly retrain (enable it in the UI, or with `dagster schedule start weekly_retrain`)."""

from __future__ import annotations

import dagster as dg

from fakenews_assets.jobs import retrain_job

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00 UTC, away from working hours
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekly: re-read the sources, retrain if anything changed, promote if the gates pass.",
)

SCHEDULES = [weekly_retrain]
