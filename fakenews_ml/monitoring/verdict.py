"""The drift verdict rules, in one place: what a day's drift report status means for its Dagster check, the
report's metadata, the drift sensor, the Monitoring page and the Pipeline page.

A day (a daily partition) gets exactly one of three verdicts:

* ``ok``: traffic looks like the reference. The check passes; no retrain.
* ``drifted``: drift share or embedding drift past its threshold. The check fails with severity ERROR and the
  drift sensor requests a retrain (once per day, at most once per cooldown).
* ``insufficient_data``: too little traffic to judge. The check fails with severity WARN (Dagster's check list
  shows it as failed, with a warning); never a retrain.

"The latest verdict" is the verdict of the newest day that was judged (``ok`` or ``drifted``): a thin day after
a drifted one does not hide the drift. Every view also lists the days whose check failed, newest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "drifted", "insufficient_data"]
STATUSES: tuple[Status, ...] = ("ok", "drifted", "insufficient_data")


@dataclass(frozen=True)
class DriftVerdict:
    status: Status
    passed: bool  # the check's result
    severity: Literal["ERROR", "WARN"]  # the check's severity (meaningful when it fails)
    retrain: bool  # whether the drift sensor requests a retrain for the day
    label: str  # the word every view shows

    @property
    def judged(self) -> bool:
        return self.status != "insufficient_data"


_VERDICTS = {
    "ok": DriftVerdict("ok", True, "ERROR", False, "passed"),
    "drifted": DriftVerdict("drifted", False, "ERROR", True, "drift"),
    "insufficient_data": DriftVerdict("insufficient_data", False, "WARN", False, "too little traffic"),
}


def verdict_of(status: str) -> DriftVerdict:
    """The verdict of a drift report's ``status``; a ValueError names an unknown status."""
    try:
        return _VERDICTS[status]
    except KeyError:
        raise ValueError(f"unknown drift report status {status!r} (expected one of {', '.join(STATUSES)})") from None


def status_of(drifted: bool | None, status: str | None = None) -> Status:
    """A report's status from what it recorded (older reports only recorded ``drifted``)."""
    if status in STATUSES:
        return status  # type: ignore[return-value]
    return "drifted" if drifted else "ok"


@dataclass(frozen=True)
class DriftOverview:
    """The days and their verdicts, summed up the same way everywhere."""

    days: dict[str, Status]  # partition -> status, every day known
    latest_day: str | None  # the newest judged day
    latest: DriftVerdict | None
    failed_days: list[str] = field(default_factory=list)  # newest first: drifted or too little traffic
    drifted_days: list[str] = field(default_factory=list)  # newest first: the days that ask for a retrain

    @property
    def failed(self) -> int:
        return len(self.failed_days)


def overview(days: Iterable[tuple[str, str]]) -> DriftOverview:
    """``(partition, status)`` pairs (any order; a later pair for the same day wins) summed up."""
    by_day: dict[str, Status] = {}
    for day, status in days:
        by_day[str(day)] = verdict_of(status).status
    ordered = sorted(by_day, reverse=True)
    judged = [d for d in ordered if verdict_of(by_day[d]).judged]
    latest_day = judged[0] if judged else None
    return DriftOverview(
        days=dict(sorted(by_day.items())),
        latest_day=latest_day,
        latest=verdict_of(by_day[latest_day]) if latest_day else None,
        failed_days=[d for d in ordered if not verdict_of(by_day[d]).passed],
        drifted_days=[d for d in ordered if verdict_of(by_day[d]).retrain],
    )
