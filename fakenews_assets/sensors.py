"""Sensors that close the production loop.

- ``prediction_volume_sensor``: every N new predictions (``FAKENEWS_DRIFT_EVERY_N``, default 500) it requests
  drift_report and live_quality for the day(s) the new traffic landed on (today, for live traffic). It also records an
  observation of the prediction_log source on every tick where the log changed (no run needed).
- ``drift_sensor``: when a day's drift report says it drifted (its ``status`` metadata read by the verdict rules
  of ``fakenews_ml.monitoring.verdict``, which its ``drift_within_thresholds`` check and the dashboard share; a
  day with too little traffic never counts) for a day it has
  not acted on, it requests the retrain job, at most once per
  cooldown (``FAKENEWS_RETRAIN_COOLDOWN_HOURS``, default 24), with run key ``retrain-after-drift-<day>`` and the
  run config of the file ``FAKENEWS_RETRAIN_RUN_CONFIG`` names (e.g. a shorter training on a CPU-only box).

Both start RUNNING (the demo needs no clicks once the daemon runs: `dagster dev` starts one); stop them in the
UI or with `dagster sensor stop <name>`. The decisions themselves are plain functions (``plan_drift_retrains``,
``VolumeCursor``...) so they are tested without a daemon; the sensors only gather inputs and wrap results.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import dagster as dg

from fakenews_assets.assets.monitoring import (
    DAILY_PARTITIONS,
    daily_predictions,
    drift_report,
    live_quality,
)
from fakenews_assets.jobs import drift_job, retrain_job
from fakenews_assets.metadata import log_state_metadata
from fakenews_assets.resources import PredictionLogStore
from fakenews_ml.environment import (
    DRIFT_EVERY_N_ENV,
    RETRAIN_COOLDOWN_ENV,
    RETRAIN_RUN_CONFIG_ENV,
    drift_every_n,
    retrain_cooldown_hours,
    retrain_run_config,
)
from fakenews_ml.monitoring.verdict import status_of, verdict_of

DRIFT_CHECK = dg.AssetCheckKey(drift_report.key, "drift_within_thresholds")
LIVE_QUALITY_CHECK = dg.AssetCheckKey(live_quality.key, "live_quality_within_bounds")
PREDICTION_LOG = dg.AssetKey("prediction_log")
HANDLED_KEPT = 100  # partitions remembered in the drift cursor (run keys dedupe beyond that anyway)
HISTORY_MAX = 2000  # drift reports read per tick at most (the rest wait for the next tick)
MAX_DAYS_PER_TICK = 14  # drift reports requested at once when replayed history lands on many days


def _parse_cursor(text: str | None, kind: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(
            f"the {kind} cursor {text[:80]!r} is not JSON; reset it in the UI (sensor page > cursor)"
        ) from None
    if not isinstance(value, dict):
        raise TypeError(f"the {kind} cursor {text[:80]!r} is not a JSON object; reset it in the UI")
    return value


# ----- drift -> retrain ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftEvaluation:
    """One materialized drift report, as the sensor needs it."""

    record_id: int  # its storage id: the cursor moves past it
    partition: str | None
    drifted: bool
    description: str = ""


@dataclass
class DriftCursor:
    last_record_id: int = 0  # every drift report up to this storage id has been considered
    handled: list[str] = field(default_factory=list)  # days a retrain was requested for (newest last)
    last_request_at: float | None = None  # unix time of the last retrain request
    last_request_partition: str | None = None

    @classmethod
    def loads(cls, text: str | None) -> "DriftCursor":
        value = _parse_cursor(text, "drift_sensor")
        return cls(
            last_record_id=int(value.get("last_record_id", 0)),
            handled=[str(p) for p in value.get("handled", [])],
            last_request_at=float(value["last_request_at"]) if value.get("last_request_at") is not None else None,
            last_request_partition=value.get("last_request_partition"),
        )

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def plan_drift_retrains(
    evaluations: list[DriftEvaluation], cursor: DriftCursor, now: float, cooldown_hours: float
) -> tuple[list[str], DriftCursor, list[str]]:
    """Which days to retrain for, the new cursor, and what was decided about each new evaluation.

    Reports are taken in order. A drifted day not acted on before requests a retrain unless one was
    requested less than ``cooldown_hours`` ago; a drifted day met during the cooldown is noted and passed
    over (the retrain already requested answers it; if drift persists, a later day's report asks again)."""
    cursor = DriftCursor(**asdict(cursor))
    cooldown = cooldown_hours * 3600
    requested, notes = [], []
    for evaluation in sorted(evaluations, key=lambda e: e.record_id):
        if evaluation.record_id <= cursor.last_record_id:
            continue
        cursor.last_record_id = evaluation.record_id
        day = evaluation.partition
        if not evaluation.drifted:
            notes.append(f"{day}: no drift ({evaluation.description or 'check passed'})")
            continue
        if day in cursor.handled:
            notes.append(f"{day}: drifted, but a retrain was already requested for it")
            continue
        if cursor.last_request_at is not None and now - cursor.last_request_at < cooldown:
            notes.append(
                f"{day}: drifted, but a retrain was requested {_hours(now - cursor.last_request_at)} ago "
                f"(for {cursor.last_request_partition}); cooldown {cooldown_hours:g} h ({RETRAIN_COOLDOWN_ENV})"
            )
            continue
        requested.append(day)
        cursor.handled = (cursor.handled + [day])[-HANDLED_KEPT:]
        cursor.last_request_at, cursor.last_request_partition = now, day
        notes.append(f"{day}: drifted ({evaluation.description}); retrain requested")
    return requested, cursor, notes


def drift_evaluations(instance: dg.DagsterInstance, after_id: int) -> list[DriftEvaluation]:
    """Drift reports materialized after storage id ``after_id``, oldest first, with their verdict as the report's
    own metadata states it (the same verdict its check, the dashboard and this sensor show)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=drift_report.key, after_storage_id=after_id or None),
        limit=HISTORY_MAX,
        ascending=True,
    ).records
    found = []
    for record in records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization is not None else {}
        value = {k: getattr(metadata.get(k), "value", None) for k in ("status", "drifted", "reasons")}
        # the verdict rules every view shares: only a drifted day asks for a retrain, never a thin one
        verdict = verdict_of(status_of(bool(value["drifted"]), value["status"]))
        found.append(
            DriftEvaluation(
                record.storage_id,
                record.partition_key,
                verdict.retrain,
                (value["reasons"] or "") if verdict.retrain else f"verdict: {verdict.label}",
            )
        )
    return found


@dg.sensor(
    name="drift_sensor",
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the drift reports. When a day's report drifted (the verdict its drift_within_thresholds "
    "check states too) and the day was not acted on yet, "
    "requests the retrain job (run key retrain-after-drift-<day>), at most once per cooldown "
    f"({RETRAIN_COOLDOWN_ENV}, default 24 h). Retraining merges the feedback labels gathered so far; its run "
    f"config comes from the file {RETRAIN_RUN_CONFIG_ENV} names, if set.",
)
def drift_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    cursor = DriftCursor.loads(context.cursor)
    evaluations = drift_evaluations(context.instance, cursor.last_record_id)
    days, new_cursor, notes = plan_drift_retrains(evaluations, cursor, time.time(), retrain_cooldown_hours())
    for note in notes:
        context.log.info(note)
    if not days:
        reason = "; ".join(notes[-5:]) if notes else "no new drift reports"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=new_cursor.dumps())
    run_config = retrain_run_config()
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"retrain-after-drift-{day}",
                run_config=run_config,
                tags={"fakenews/trigger": "drift", "fakenews/drift_partition": str(day)},
            )
            for day in days
        ],
        cursor=new_cursor.dumps(),
    )


# ----- prediction volume -> drift report ----------------------------------------------------------------


@dataclass
class VolumeCursor:
    last_id: int = 0  # highest prediction id already covered by a requested drift report
    observed_version: str | None = None  # the prediction_log data version last recorded

    @classmethod
    def loads(cls, text: str | None) -> "VolumeCursor":
        value = _parse_cursor(text, "prediction_volume_sensor")
        return cls(last_id=int(value.get("last_id", 0)), observed_version=value.get("observed_version"))

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _is_partition(day: str) -> bool:
    start = DAILY_PARTITIONS.start.strftime("%Y-%m-%d")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return start <= day <= today


@dg.sensor(
    name="prediction_volume_sensor",
    job=drift_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Every {DRIFT_EVERY_N_ENV} (default 500) new predictions, requests daily_predictions + drift_report "
    "+ live_quality for the day(s) they landed on (run key drift-<day>-upto-<last id>); records an observation of prediction_log "
    "whenever the log changed.",
)
def prediction_volume_sensor(context: dg.SensorEvaluationContext, log_store: PredictionLogStore) -> dg.SensorResult:
    from fakenews_ml.stages.monitoring import observe_prediction_log

    every = drift_every_n()
    cursor = VolumeCursor.loads(context.cursor)
    with log_store.open() as log:
        state = observe_prediction_log(log)
        if state.max_id < cursor.last_id:  # a new, empty log behind the same URL: start over
            context.log.warning(f"prediction log ids restarted (max id {state.max_id} < cursor {cursor.last_id})")
            cursor.last_id = 0
        new = log.count_after(cursor.last_id)
        days = log.daily_counts(after_id=cursor.last_id) if new >= every else None
    events = []
    if state.data_version != cursor.observed_version:
        events.append(
            dg.AssetObservation(
                asset_key=PREDICTION_LOG,
                metadata=log_state_metadata(state),
                tags={"dagster/data_version": state.data_version},
            )
        )
    next_cursor = VolumeCursor(cursor.last_id, state.data_version)
    if days is None:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{new} new prediction(s) since id {cursor.last_id}; a drift report is "
                f"requested every {every} ({DRIFT_EVERY_N_ENV})"
            ),
            cursor=next_cursor.dumps(),
            asset_events=events,
        )
    next_cursor.last_id = state.max_id
    wanted = [str(day) for day in days["day"]]
    valid = [day for day in wanted if _is_partition(day)][-MAX_DAYS_PER_TICK:]
    skipped = sorted(set(wanted) - set(valid))
    if skipped:
        context.log.warning(
            f"no drift report for {skipped}: outside the daily partitions ({DAILY_PARTITIONS.start:%Y-%m-%d} .. today)"
        )
    if not valid:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{new} new predictions, all on days without a partition: {skipped}"),
            cursor=next_cursor.dumps(),
            asset_events=events,
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"drift-{day}-upto-{state.max_id}",
                partition_key=day,
                asset_selection=[daily_predictions.key, drift_report.key, live_quality.key],
                asset_check_keys=[DRIFT_CHECK, LIVE_QUALITY_CHECK],
                tags={"fakenews/trigger": "prediction_volume", "fakenews/new_predictions": str(new)},
            )
            for day in valid
        ],
        cursor=next_cursor.dumps(),
        asset_events=events,
    )
