"""The first day of the daily monitoring partitions (daily_predictions, drift_report).

A fresh install should not show two years of empty days, and a code location reloaded tomorrow must not move its
partitions. So the start is, in order: ``FAKENEWS_PARTITIONS_START`` (YYYY-MM-DD) when set; else the day recorded
under ``FAKENEWS_HOME`` (``monitoring/partitions_start``); else the first logged prediction's day, or today when
the log is empty, which is then recorded once. Replaying history (``fakenews simulate --day``) moves the recorded
day back to the replayed one (``extend_partitions_start``), so those days get partitions at the next code-location
load (Deployment > Reload in the UI, or a restart of ``dagster dev``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime

from fakenews_ml.atomic import write_text
from fakenews_ml.environment import home_path, prediction_log_url
from fakenews_ml.errors import FakeNewsError

PARTITIONS_START_ENV = "FAKENEWS_PARTITIONS_START"
RECORD = ("monitoring", "partitions_start")


def parse_day(text: str, name: str = PARTITIONS_START_ENV) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FakeNewsError(f"{name}={text.strip()!r} is not a day (YYYY-MM-DD)") from None


def recorded_start() -> date | None:
    """The day recorded under FAKENEWS_HOME, or None before the first load."""
    record = home_path(*RECORD)
    return parse_day(record.read_text(), str(record)) if record.is_file() else None


def _record(day: date) -> None:
    write_text(home_path(*RECORD), day.isoformat() + "\n")


def first_logged_day() -> date | None:
    """The day of the first logged prediction, or None (no log yet, an empty or unreadable one). A SQLite log that
    does not exist is not created here."""
    url = prediction_log_url()
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        return None
    from fakenews_ml.monitoring.prediction_log import PredictionLog

    try:
        with PredictionLog(url) as log:
            first = log.stats().get("first_prediction_at")
    except Exception:  # noqa: BLE001 - an unreachable log must not stop the code location from loading
        return None
    return first.astimezone(UTC).date() if first is not None else None


def partitions_start(environ: Mapping[str, str] | None = None, today: date | None = None) -> date:
    """The first daily partition (see the module's docstring); records it on first use."""
    env = os.environ if environ is None else environ
    explicit = (env.get(PARTITIONS_START_ENV) or "").strip()
    if explicit:
        return parse_day(explicit)
    recorded = recorded_start()
    if recorded is not None:
        return recorded
    today = today or datetime.now(UTC).date()
    start = min(first_logged_day() or today, today)
    _record(start)
    return start


def extend_partitions_start(day: date, environ: Mapping[str, str] | None = None) -> date | None:
    """Move the recorded start back to ``day`` when it is earlier (replayed history). Returns the new start, or
    None when nothing moved (the day already has a partition, or FAKENEWS_PARTITIONS_START decides)."""
    env = os.environ if environ is None else environ
    if (env.get(PARTITIONS_START_ENV) or "").strip():
        return None
    current = partitions_start(env)
    if day >= current:
        return None
    _record(day)
    return day
