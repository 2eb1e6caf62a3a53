"""The drift verdict rules every view shares (fakenews_ml.monitoring.verdict)."""

import pytest

from fakenews_ml.monitoring.verdict import overview, status_of, verdict_of


def test_each_status_has_one_check_result_severity_and_retrain_decision():
    assert [
        (v.passed, v.severity, v.retrain, v.label) for v in map(verdict_of, ("ok", "drifted", "insufficient_data"))
    ] == [
        (True, "ERROR", False, "passed"),
        (False, "ERROR", True, "drift"),
        (False, "WARN", False, "too little traffic"),
    ]
    with pytest.raises(ValueError, match="unknown drift report status 'maybe'"):
        verdict_of("maybe")
    assert status_of(True) == "drifted" and status_of(False) == "ok"  # reports from before status was kept
    assert status_of(False, "insufficient_data") == "insufficient_data"


def test_the_latest_verdict_is_the_newest_judged_day_and_every_failed_day_is_listed():
    days = [("2024-05-03", "insufficient_data"), ("2024-05-01", "ok"), ("2024-05-02", "drifted")]
    summary = overview(days)
    assert (summary.latest_day, summary.latest.status) == ("2024-05-02", "drifted")  # a thin day hides nothing
    assert summary.failed_days == ["2024-05-03", "2024-05-02"] and summary.drifted_days == ["2024-05-02"]
    assert summary.failed == 2

    # a later clean day is the latest verdict; the drifted day stays listed
    later = overview([*days, ("2024-05-04", "ok")])
    assert (later.latest_day, later.latest.passed) == ("2024-05-04", True) and later.drifted_days == ["2024-05-02"]
    # a day judged again: the later verdict of that day wins
    assert overview([("2024-05-02", "drifted"), ("2024-05-02", "ok")]).failed_days == []
    nothing = overview([("2024-05-03", "insufficient_data")])
    assert nothing.latest is None and nothing.latest_day is None and nothing.failed_days == ["2024-05-03"]
