"""Where the daily monitoring partitions start: FAKENEWS_PARTITIONS_START, else the day recorded under FAKENEWS_HOME
on first load (the first logged prediction's day, or that day itself), stable across reloads; replayed history
moves the recorded day back. tests/conftest.py sets FAKENEWS_PARTITIONS_START for the rest of the suite; these
tests pass an environment without it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from fakenews_ml.errors import FakeNewsError
from fakenews_ml.monitoring.partitions_start import (
    PARTITIONS_START_ENV,
    RECORD,
    extend_partitions_start,
    partitions_start,
)
from fakenews_ml.monitoring.prediction_log import PredictionLog

REPO = Path(__file__).resolve().parents[2]
NO_START: dict[str, str] = {}


def _log_one_prediction(when: datetime) -> None:
    with PredictionLog() as log:  # the configured log: SQLite under FAKENEWS_HOME
        log.log_predictions(
            [{"request_id": "r1", "title": "a headline", "prob_fake": 0.2, "label": 0, "model_version": "v1",
              "origin": "test", "created_at": when}]
        )  # fmt: skip


def test_a_fresh_install_starts_today_and_keeps_that_day_on_later_loads(fakenews_home):
    first = partitions_start(NO_START, today=date(2026, 12, 7))
    assert first == date(2026, 12, 7)
    assert (fakenews_home / Path(*RECORD)).read_text().strip() == "2026-12-07"
    assert not (fakenews_home / "logs" / "predictions.sqlite").exists()  # looking did not create a log
    # a reload a week later (a code-server restart) keeps the same partitions
    assert partitions_start(NO_START, today=date(2026, 12, 14)) == first


def test_the_first_logged_prediction_decides_when_there_is_history(fakenews_home):
    _log_one_prediction(datetime(2026, 11, 3, 23, 30, tzinfo=UTC))
    assert partitions_start(NO_START, today=date(2026, 12, 7)) == date(2026, 11, 3)


def test_the_environment_variable_wins_and_a_bad_one_is_one_clear_error(fakenews_home):
    partitions_start(NO_START, today=date(2026, 12, 7))  # recorded
    assert partitions_start({PARTITIONS_START_ENV: "2025-06-01"}) == date(2025, 6, 1)
    with pytest.raises(FakeNewsError, match=r"FAKENEWS_PARTITIONS_START='June' is not a day \(YYYY-MM-DD\)"):
        partitions_start({PARTITIONS_START_ENV: "June"})


def test_replayed_history_moves_the_recorded_start_back_never_forward(fakenews_home):
    partitions_start(NO_START, today=date(2026, 12, 7))
    assert extend_partitions_start(date(2026, 11, 1), NO_START) == date(2026, 11, 1)
    assert extend_partitions_start(date(2026, 11, 20), NO_START) is None
    assert partitions_start(NO_START) == date(2026, 11, 1)
    # an explicit start is the user's decision: replay never rewrites it
    assert extend_partitions_start(date(2026, 1, 1), {PARTITIONS_START_ENV: "2026-06-01"}) is None
    assert partitions_start(NO_START) == date(2026, 11, 1)


def test_the_code_location_loads_its_partitions_from_the_recorded_start(fakenews_home):
    _log_one_prediction(datetime(2026, 10, 5, 8, 0, tzinfo=UTC))
    env = {k: v for k, v in os.environ.items() if k != PARTITIONS_START_ENV}
    env.update(FAKENEWS_HOME=str(fakenews_home), PYTHONPATH=str(REPO))
    program = (
        "from fakenews_assets.definitions import defs\n"
        "for name in ('daily_predictions', 'drift_report'):\n"
        "    print(defs.resolve_assets_def(name).partitions_def.get_first_partition_key())\n"
        "print(defs.resolve_job_def('drift_job').partitions_def.get_first_partition_key())\n"
    )
    loaded = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=240)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["2026-10-05"] * 3
    assert (fakenews_home / Path(*RECORD)).read_text().strip() == "2026-10-05"
