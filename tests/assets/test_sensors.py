"""Sensors and the daily schedule, evaluated with ``build_sensor_context`` / ``build_schedule_context`` against
a real instance (``instance_for_test``): both the run requests and the new cursor are asserted.

The drift sensor reads real materializations: a stand-in drift_report (same key and partitions, a typed
manifest chosen by config and the real asset's metadata, no model) is materialized together with the real
``drift_within_thresholds`` check, so the sensor sees exactly the records a real run leaves behind."""

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from fakenews_assets.assets.monitoring import DAILY_PARTITIONS, drift_within_thresholds
from fakenews_assets.definitions import build_definitions
from fakenews_assets.metadata import drift_metadata
from fakenews_assets.resources import ManifestIOManager, PredictionLogStore
from fakenews_assets.schedules import daily_drift_schedule
from fakenews_assets.sensors import (
    DriftCursor,
    DriftEvaluation,
    drift_sensor,
    plan_drift_retrains,
    prediction_volume_sensor,
)
from fakenews_ml.config import DriftConfig
from fakenews_ml.manifests import DriftReport, EmbeddingDrift, FeatureDrift
from fakenews_ml.monitoring.prediction_log import PredictionLog, utc_now


class Verdict(dg.Config):
    drifted: bool = False
    rows: int = 500


def _manifest(day: str, drifted: bool, rows: int) -> DriftReport:
    """What ``stages.monitoring.report_drift`` returns, with made-up scores."""
    common = {
        "code_version": "test",
        "partition": day,
        "key": f"k-{day}",
        "daily_digest": "d",
        "reference_key": "r",
        "reference_model_version": "v1",
        "rows": rows,
        "min_current_rows": 200,
        "config": DriftConfig(),
    }
    if rows < 200:
        return DriftReport(
            **common,
            status="insufficient_data",
            drifted=False,
            reason=f"insufficient data: {rows} usable prediction(s) on {day}, at least 200 needed",
        )
    title = FeatureDrift(
        column="title", stattest="abs_text_content_drift", score=0.9 if drifted else 0.5, threshold=0.6, drifted=drifted
    )
    embedding = EmbeddingDrift(
        method="domain_classifier",
        score=0.95 if drifted else 0.5,
        p_value=0.01,
        threshold=0.6,
        min_auc=0.55,
        drifted=drifted,
        dims=32,
    )
    return DriftReport(
        **common,
        status="drifted" if drifted else "ok",
        drifted=drifted,
        drift_share=0.8 if drifted else 0.0,
        drift_share_threshold=0.5,
        features={"title": title},
        embedding_drift=embedding,
        reasons=["drift share 0.80 >= 0.50 (title)"] if drifted else [],
        n_current=rows,
        n_reference=500,
    )


@dg.asset(name="drift_report", partitions_def=DAILY_PARTITIONS)
def stand_in_drift_report(context: dg.AssetExecutionContext, config: Verdict) -> dg.Output[DriftReport]:
    manifest = _manifest(context.partition_key, config.drifted, config.rows)
    return dg.Output(manifest, metadata=drift_metadata(manifest))


@pytest.fixture
def drift_instance(tmp_path):
    with dg.instance_for_test() as instance:
        yield instance


def _report(instance, tmp_path, day: str, drifted: bool = False, rows: int = 500) -> None:
    result = dg.materialize(
        [stand_in_drift_report, drift_within_thresholds],
        instance=instance,
        partition_key=day,
        resources={"io_manager": ManifestIOManager(base_dir=str(tmp_path / "manifests"))},
        run_config={"ops": {"drift_report": {"config": {"drifted": drifted, "rows": rows}}}},
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is (not drifted and rows >= 200)


def _tick(instance, cursor: str | None) -> dg.SensorResult:
    return drift_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_drift_sensor_requests_one_retrain_per_drifted_day_with_a_cooldown(drift_instance, tmp_path, monkeypatch):
    monkeypatch.delenv("FAKENEWS_RETRAIN_COOLDOWN_HOURS", raising=False)
    assert drift_sensor.job_name == "retrain"
    assert drift_sensor.default_status == dg.DefaultSensorStatus.RUNNING

    # nothing evaluated yet
    result = _tick(drift_instance, None)
    assert not result.run_requests and "no new drift reports" in result.skip_reason.skip_message
    assert DriftCursor.loads(result.cursor) == DriftCursor()

    # no drift: skipped, and the cursor moves past that evaluation (it is never read again)
    _report(drift_instance, tmp_path, "2024-05-01", drifted=False)
    result = _tick(drift_instance, result.cursor)
    assert not result.run_requests and "2024-05-01: no drift" in result.skip_reason.skip_message
    calm = DriftCursor.loads(result.cursor)
    assert calm.last_record_id > 0 and calm.handled == [] and calm.last_request_at is None

    # drift: one retrain, keyed by the day
    _report(drift_instance, tmp_path, "2024-05-02", drifted=True)
    before = time.time()
    result = _tick(drift_instance, result.cursor)
    (request,) = result.run_requests
    assert request.run_key == "retrain-after-drift-2024-05-02"
    assert request.tags["fakenews/trigger"] == "drift" and request.tags["fakenews/drift_partition"] == "2024-05-02"
    cursor = DriftCursor.loads(result.cursor)
    assert cursor.handled == ["2024-05-02"] and cursor.last_request_partition == "2024-05-02"
    assert before <= cursor.last_request_at <= time.time() and cursor.last_record_id > calm.last_record_id

    # the next tick sees nothing new; the same day drifting again (a re-run) is not a second retrain
    again = _tick(drift_instance, result.cursor)
    assert not again.run_requests and again.cursor == result.cursor
    _report(drift_instance, tmp_path, "2024-05-02", drifted=True)
    again = _tick(drift_instance, result.cursor)
    assert not again.run_requests and "already requested" in again.skip_reason.skip_message

    # another drifted day inside the cooldown: skipped, saying why
    _report(drift_instance, tmp_path, "2024-05-03", drifted=True)
    inside = _tick(drift_instance, again.cursor)
    assert not inside.run_requests
    assert "2024-05-03: drifted, but a retrain was requested" in inside.skip_reason.skip_message
    assert "cooldown 24 h (FAKENEWS_RETRAIN_COOLDOWN_HOURS)" in inside.skip_reason.skip_message
    assert DriftCursor.loads(inside.cursor).handled == ["2024-05-02"]

    # after the cooldown (the last request 25 h ago), the next drifted evaluation is acted on
    _report(drift_instance, tmp_path, "2024-05-03", drifted=True)
    aged = DriftCursor.loads(inside.cursor)
    aged.last_request_at -= 25 * 3600
    after = _tick(drift_instance, aged.dumps())
    (request,) = after.run_requests
    assert request.run_key == "retrain-after-drift-2024-05-03"
    assert DriftCursor.loads(after.cursor).handled == ["2024-05-02", "2024-05-03"]


def test_cooldown_comes_from_the_environment_and_thin_days_never_retrain(drift_instance, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKENEWS_RETRAIN_COOLDOWN_HOURS", "0.5")
    recent = DriftCursor(
        last_request_at=time.time() - 3600, last_request_partition="2024-04-01", handled=["2024-04-01"]
    )

    _report(drift_instance, tmp_path, "2024-05-04", rows=40)  # too little traffic: a WARN, not drift
    result = _tick(drift_instance, recent.dumps())
    assert not result.run_requests and "2024-05-04: no drift" in result.skip_reason.skip_message

    _report(drift_instance, tmp_path, "2024-05-05", drifted=True)
    settings = tmp_path / "retrain.yaml"
    settings.write_text("ops:\n  trained_model:\n    config: {max_steps: 50}\n")
    monkeypatch.setenv("FAKENEWS_RETRAIN_RUN_CONFIG", str(settings))
    (request,) = _tick(drift_instance, result.cursor).run_requests  # 1 h ago > 0.5 h cooldown
    assert request.run_key == "retrain-after-drift-2024-05-05"
    assert request.run_config == {"ops": {"trained_model": {"config": {"max_steps": 50}}}}

    monkeypatch.setenv("FAKENEWS_RETRAIN_COOLDOWN_HOURS", "soon")
    with pytest.raises(ValueError, match="FAKENEWS_RETRAIN_COOLDOWN_HOURS='soon' is not a number"):
        _tick(drift_instance, None)


def test_drift_plan_takes_reports_in_order_within_the_cooldown():
    evaluations = [
        DriftEvaluation(3, "2024-05-01", drifted=False),
        DriftEvaluation(4, "2024-05-02", drifted=True, description="drift share 0.83 >= 0.50"),
        DriftEvaluation(5, "2024-05-03", drifted=True),
    ]
    days, cursor, notes = plan_drift_retrains(evaluations, DriftCursor(last_record_id=2), now=1e9, cooldown_hours=24)
    assert days == ["2024-05-02"] and cursor.last_record_id == 5  # 05-03 falls in the cooldown just started
    assert "cooldown" in notes[-1] and "2024-05-01: no drift" in notes[0]
    assert plan_drift_retrains(evaluations, cursor, now=1e9, cooldown_hours=24)[0] == []  # all seen already
    with pytest.raises(ValueError, match="not JSON"):
        DriftCursor.loads("{broken")


# ----- prediction volume ---------------------------------------------------------------------------------


def _log_rows(log: PredictionLog, n: int, created_at=None) -> None:
    log.log_predictions(
        [
            {
                "request_id": f"r{i}",
                "title": f"Headline number {i} about the senate",
                "prob_fake": 0.2,
                "label": 0,
                "model_version": "v1",
                "created_at": created_at,
            }
            for i in range(n)
        ]
    )


def test_volume_sensor_requests_a_drift_report_every_n_predictions(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKENEWS_DRIFT_EVERY_N", "5")
    url = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    resources = {"log_store": PredictionLogStore(url=url)}
    today = utc_now().strftime("%Y-%m-%d")
    assert prediction_volume_sensor.job_name == "drift_job"

    with dg.instance_for_test() as instance, PredictionLog(url) as log:

        def tick(cursor):
            return prediction_volume_sensor(
                dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            )

        _log_rows(log, 3)
        first = tick(None)
        assert not first.run_requests
        assert "3 new prediction(s) since id 0; a drift report is requested every 5" in first.skip_reason.skip_message
        cursor = json.loads(first.cursor)
        assert cursor["last_id"] == 0 and cursor["observed_version"].startswith("3-3-")
        (observation,) = first.asset_events  # the log changed: recorded as an observation of prediction_log
        assert observation.asset_key == dg.AssetKey("prediction_log")
        assert observation.tags["dagster/data_version"] == cursor["observed_version"]
        assert observation.metadata["rows"].value == 3

        same = tick(first.cursor)
        assert not same.run_requests and not same.asset_events and same.cursor == first.cursor

        _log_rows(log, 3)
        due = tick(same.cursor)
        (request,) = due.run_requests
        assert request.partition_key == today and request.run_key == f"drift-{today}-upto-6"
        assert request.asset_selection == [
            dg.AssetKey("daily_predictions"),
            dg.AssetKey("drift_report"),
            dg.AssetKey("live_quality"),
        ]
        assert json.loads(due.cursor)["last_id"] == 6

        # replayed history: a report per day the new rows landed on; days before the partitions are skipped
        _log_rows(log, 4, created_at=datetime(2024, 5, 1, 12, tzinfo=UTC))
        _log_rows(log, 2, created_at=datetime(2023, 6, 1, 12, tzinfo=UTC))
        replay = tick(due.cursor)
        assert [(r.partition_key, r.run_key) for r in replay.run_requests] == [
            ("2024-05-01", "drift-2024-05-01-upto-12")
        ]
        assert json.loads(replay.cursor)["last_id"] == 12


def test_daily_schedule_reports_on_yesterday():
    assert daily_drift_schedule.job_name == "drift_job"
    assert daily_drift_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    repository = build_definitions({}).get_repository_def()
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            repository_def=repository,
            scheduled_execution_time=datetime(2024, 5, 3, 0, 15, tzinfo=UTC),
        )
        (request,) = daily_drift_schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-05-02" and request.run_key == "daily-drift-2024-05-02"
    assert request.tags["dagster/partition"] == "2024-05-02"
    # the first night after the partitions start (an install): no partition for yesterday, a skip, not an error
    first_night = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 1, 1, 0, 15, tzinfo=UTC))
    tick = daily_drift_schedule.evaluate_tick(first_night)
    assert not tick.run_requests and "2023-12-31 is before the first daily partition (2024-01-01)" in tick.skip_message


def test_sensors_and_jobs_are_in_the_code_location():
    defs = build_definitions({})
    assert {s.name for s in defs.sensors} == {"drift_sensor", "prediction_volume_sensor"}
    drift = defs.resolve_job_def("drift_job")
    assert {k.to_user_string() for k in drift.asset_layer.executable_asset_keys} == {
        "daily_predictions",
        "drift_report",
        "live_quality",
    }
    assert {k.name for k in drift.asset_layer.asset_graph.asset_check_keys} == {
        "drift_within_thresholds",
        "live_quality_within_bounds",
    }
    assert drift.partitions_def == DAILY_PARTITIONS
    # every drift threshold is on the launchpad with the core default
    ops = drift.run_config_schema.config_type.fields["ops"].config_type.fields
    fields = ops["drift_report"].config_type.fields["config"].config_type.fields
    assert set(fields) == set(DriftConfig.model_fields)
    assert fields["drift_share"].default_value == DriftConfig().drift_share
    assert fields["min_current_rows"].default_value == DriftConfig().min_current_rows
    today = utc_now().strftime("%Y-%m-%d")
    assert DAILY_PARTITIONS.get_first_partition_key() == "2024-01-01" and DAILY_PARTITIONS.has_partition_key(today)
    assert not DAILY_PARTITIONS.has_partition_key((utc_now() + timedelta(days=2)).strftime("%Y-%m-%d"))
    retrain = {k.to_user_string() for k in defs.resolve_job_def("retrain").asset_layer.executable_asset_keys}
    assert {"feedback_labels", "validated_news", "trained_model", "production_model", "reference_profile"} <= retrain
    assert not retrain & {"prediction_log", "daily_predictions", "drift_report", "live_quality"}
