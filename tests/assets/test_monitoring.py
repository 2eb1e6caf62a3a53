"""The monitoring side of the graph, materialized in-process: the observed prediction log, a day's traffic
snapshot, drift reports on real traffic (held-out FakeNewsNet titles vs COVID posts) with their check, the
feedback merge into validated_news, and the reduced production loop end to end (drift -> sensor -> retrain
with COVID feedback -> gate).

One module-wide home trains a tiny champion on real FakeNewsNet titles and logs three days of traffic
through it; the drift and scenario tests share it (the scenario runs last: it may promote a new champion)."""

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from fakenews_assets.assets.monitoring import prediction_log
from fakenews_assets.definitions import build_definitions
from fakenews_assets.resources import PredictionLogStore
from fakenews_assets.sensors import DriftCursor, drift_sensor
from fakenews_ml.artifacts import content_key
from fakenews_ml.bundle import read_meta
from fakenews_ml.config import ValidationConfig
from fakenews_ml.manifests import load_manifest
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.predict import Predictor

from .conftest import (
    ASSET_NAMES,
    GOOD_TRAINING,
    Run,
    champion_state,
    fakenews_env,
    materialize,
    read_manifests,
    run_config,
)
from .data import news_frame, write_news_csv

DATASETS = Path(os.environ.get("FAKENEWS_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
SAME_DAY, COVID_DAY, THIN_DAY, EMPTY_DAY = "2024-05-01", "2024-05-02", "2024-05-03", "2024-04-30"
WINDOW = 250  # rows per day of traffic (the drift test's default minimum is 200)
DRIFT = dg.AssetSelection.assets("daily_predictions", "drift_report") | dg.AssetSelection.checks_for_assets(
    "drift_report"
)
FEEDBACK = dg.AssetSelection.assets(
    "raw_news", "feedback_labels", "validated_news"
) | dg.AssetSelection.checks_for_assets("feedback_labels", "validated_news")


def log_url(home: Path) -> str:
    """The URL the log_store resource opens when FAKENEWS_HOME is ``home`` (the API's default too)."""
    return f"sqlite:///{home / 'logs' / 'predictions.sqlite'}"


def serve(log: PredictionLog, predictor: Predictor, version: str, titles: list[str], day: str) -> list[int]:
    """Log ``titles`` as the API would have served them on ``day`` (one every 10 s from 08:00 UTC)."""
    predicted = predictor.predict(titles)
    start = datetime.fromisoformat(day).replace(hour=8, tzinfo=UTC)
    return log.log_predictions(
        [
            {
                "request_id": f"{day}-{i}",
                "title": title,
                "prob_fake": float(p),
                "label": int(label),
                "model_version": version,
                "created_at": start + timedelta(seconds=10 * i),
                "origin": "simulator",
            }
            for i, (title, p, label) in enumerate(zip(titles, predicted["prob_fake"], predicted["label"]))
        ]
    )


@dataclass
class Loop:
    home: Path
    sources: Path
    config: dict
    instance: dg.DagsterInstance
    champion: str
    covid: pd.DataFrame
    covid_ids: list[int]
    drift_runs: dict[str, Run]


@pytest.fixture(scope="module")
def loop(tmp_path_factory, tiny_encoder_dir):
    if not DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {DATASETS} (set FAKENEWS_DATASETS)")
    root = tmp_path_factory.mktemp("loop")
    home, sources = root / "home", root / "sources" / "fakenewsnet.csv"
    fakenewsnet = pd.read_csv(DATASETS / "fakenewsnet_titles.csv").sample(n=600 + WINDOW + 30, random_state=0)
    sources.parent.mkdir(parents=True)
    fakenewsnet.iloc[:600].to_csv(sources, index=False)
    heldout = fakenewsnet["title"].iloc[600:].tolist()
    covid = pd.read_csv(DATASETS / "constraint_covid19.csv").sample(n=WINDOW, random_state=0).reset_index(drop=True)
    # as in the headless test: one headline of a 60-row test split is 1.7%, the default parity bounds are for real sizes
    # A 600-row source leaves a 60-row val split, too small a reference, so the profile takes train rows; the
    # lexical half would memorise those 480 training titles and make train-row confidence a false yardstick.
    config = run_config(
        tiny_encoder_dir,
        {**GOOD_TRAINING, "max_steps": 20, "lexical_blend": False},
        reference_profile={"sample_size": 300, "split": "train"},
        quantized_model={"max_accuracy_drop": 0.1, "min_agreement": 0.8},
    )
    with dg.instance_for_test() as instance:
        first = materialize(home, sources, config, instance=instance)
        assert first.result.success, first.failed_steps
        production = read_manifests(home)["production_model"]
        predictor = Predictor.from_path(home / production.serving)  # what the API serves
        with PredictionLog(log_url(home)) as log:
            serve(log, predictor, production.version, heldout[:WINDOW], SAME_DAY)
            covid_ids = serve(log, predictor, production.version, covid["title"].tolist(), COVID_DAY)
            serve(log, predictor, production.version, heldout[WINDOW:], THIN_DAY)
        runs = {
            day: materialize(home, sources, {}, selection=DRIFT, partition_key=day, instance=instance)
            for day in (SAME_DAY, COVID_DAY, THIN_DAY)
        }
        yield Loop(home, sources, config, instance, str(home / production.champion), covid, covid_ids, runs)


def test_daily_predictions_snapshot_one_day_of_the_log(loop):
    run = loop.drift_runs[SAME_DAY]
    manifest = load_manifest(
        (loop.home / "dagster" / "manifests" / "daily_predictions" / f"{SAME_DAY}.json").read_text()
    )
    frame = pd.read_parquet(loop.home / manifest.predictions)
    assert manifest.day == SAME_DAY and manifest.rows == len(frame) == WINDOW
    assert frame["created_at"].dt.strftime("%Y-%m-%d").eq(SAME_DAY).all()  # not a row of the next day
    meta = run.metadata["daily_predictions"]
    assert meta["dagster/row_count"] == WINDOW
    assert meta["fake_rate"] == pytest.approx(frame["label"].mean(), abs=1e-4)
    confidence = frame["prob_fake"].where(frame["prob_fake"] >= 0.5, 1 - frame["prob_fake"])
    assert meta["mean_confidence"] == pytest.approx(confidence.mean(), abs=1e-4)
    version = read_meta(loop.champion)["version"]
    assert [r.data for r in meta["by_model_version"].records] == [
        {
            "model_version": version,
            "rows": WINDOW,
            "fake_rate": manifest.fake_rate,
            "mean_confidence": manifest.mean_confidence,
        }
    ]
    assert meta["last_prediction_at"].startswith(SAME_DAY)

    # the same rows again: the same content-addressed snapshot and data version; an empty day is a valid snapshot
    again = materialize(
        loop.home,
        loop.sources,
        {},
        selection=dg.AssetSelection.assets("daily_predictions"),
        partition_key=SAME_DAY,
        instance=loop.instance,
    )
    empty = materialize(
        loop.home,
        loop.sources,
        {},
        selection=dg.AssetSelection.assets("daily_predictions"),
        partition_key=EMPTY_DAY,
        instance=loop.instance,
    )
    assert again.result.success and empty.result.success
    records = loop.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("daily_predictions"), asset_partitions=[SAME_DAY]), limit=2
    ).records
    assert len({r.asset_materialization.tags["dagster/data_version"] for r in records}) == 1
    assert empty.metadata["daily_predictions"]["dagster/row_count"] == 0
    assert empty.metadata["daily_predictions"]["fake_rate"] == "none"


def test_drift_report_calm_on_held_out_titles_and_drifted_on_covid_posts(loop, monkeypatch):
    same, covid, thin = (loop.drift_runs[day] for day in (SAME_DAY, COVID_DAY, THIN_DAY))
    assert same.result.success and covid.result.success and thin.result.success

    assert same.checks == {"drift_within_thresholds": True}, same.check_descriptions
    assert same.metadata["drift_report"]["status"] == "ok" and same.metadata["drift_report"]["drifted"] is False

    assert covid.checks == {"drift_within_thresholds": False}
    assert covid.check_descriptions["drift_within_thresholds"][0] == "ERROR"
    meta = covid.metadata["drift_report"]
    assert meta["status"] == "drifted" and meta["drifted"] is True
    assert meta["drift_share"] >= meta["drift_share_threshold"] or meta["embedding_drift"] > meta["embedding_threshold"]
    assert "title" in covid.check_metadata["drift_within_thresholds"]["drifted_features"]
    assert meta["n_current"] == WINDOW and meta["n_reference"] == 300
    assert {"title", "embeddings"} <= {r.data["feature"] for r in meta["features"].records}
    assert meta["plot"].count("data:image/png;base64,") == 1

    folder = loop.home / "drift_reports" / COVID_DAY
    assert meta["report_html"] == f"drift_reports/{COVID_DAY}/report.html"  # relative to the artifact store
    # one click from the asset to the report in the dashboard (which opens the day named by ?report=)
    assert meta["report"] == f"http://127.0.0.1:8501/monitoring?report={COVID_DAY}"
    assert "<html" in (folder / "report.html").read_text().lower()
    summary = json.loads((folder / "report.json").read_text())["summary"]
    assert summary["drifted"] is True and summary["n_current"] == WINDOW
    assert (folder / "drift_scores.png").stat().st_size > 1000

    # a day with too little traffic: materialized, no report, a warning (not an error) saying why
    assert thin.metadata["drift_report"]["status"] == "insufficient_data"
    assert thin.checks == {"drift_within_thresholds": False}
    severity, description = thin.check_descriptions["drift_within_thresholds"]
    assert (
        severity == "WARN" and "insufficient data: 30 usable prediction(s) on 2024-05-03, at least 200" in description
    )
    thin_folder = loop.home / "drift_reports" / THIN_DAY  # its verdict only, no report
    assert sorted(p.name for p in thin_folder.iterdir()) == ["manifest.json"]

    # the dashboard reads the same history
    from fakenews_ml.monitoring.drift_store import drift_history

    monkeypatch.setenv("FAKENEWS_HOME", str(loop.home))
    history = drift_history()
    assert history["partition"].tolist() == [SAME_DAY, COVID_DAY, THIN_DAY]
    assert history["drifted"].tolist() == [False, True, False]


def test_prediction_log_is_observed_with_a_data_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    defs = dg.Definitions(
        assets=[prediction_log],
        resources={"log_store": PredictionLogStore(url=url)},
        jobs=[dg.define_asset_job("observe", selection=dg.AssetSelection.assets("prediction_log"))],
    )
    job = defs.resolve_job_def("observe")
    with dg.instance_for_test() as instance, PredictionLog(url) as log:

        def observe() -> tuple[str, dict]:
            assert job.execute_in_process(instance=instance).success
            record = instance.fetch_observations(dg.AssetKey("prediction_log"), limit=1).records[0]
            observation = record.asset_observation
            return observation.tags["dagster/data_version"], {k: v.value for k, v in observation.metadata.items()}

        empty_version, meta = observe()
        assert meta["rows"] == 0 and meta["last_prediction_at"] == "none yet"
        at = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
        ids = log.log_predictions(
            [
                {
                    "request_id": "r",
                    "title": "Senate passes the budget",
                    "prob_fake": 0.1,
                    "label": 0,
                    "model_version": "v1",
                    "created_at": at,
                }
            ]
            * 2
        )
        version, meta = observe()
        assert version != empty_version and version.startswith("2-2-")
        assert meta["rows"] == 2 and meta["max_id"] == 2 and meta["last_prediction_at"] == "2024-05-01T09:30:00+00:00"
        assert observe()[0] == version  # unchanged log, unchanged version
        log.add_feedback([{"prediction_id": ids[0], "label": 1}])
        fed, meta = observe()
        assert fed != version and meta["feedback_rows"] == 1


def test_feedback_labels_are_validated_and_merged_into_the_training_data(tmp_path):
    home, sources = tmp_path / "home", write_news_csv(tmp_path / "news.csv", n=200, seed=4)
    raw_titles = news_frame(200, seed=4)

    before = materialize(home, sources, {}, selection=FEEDBACK)
    assert before.result.success and before.checks == {"feedback_quality_suite": True, "news_quality_suite": True}
    assert before.metadata["feedback_labels"]["dagster/row_count"] == 0
    no_feedback = read_manifests(home)["validated_news"]
    # no feedback: the same key (and data version) as the raw data alone always had
    raw = read_manifests(home)["raw_news"]
    assert no_feedback.key == content_key(raw.news.digest, ValidationConfig().model_dump(), no_feedback.code_version)
    assert no_feedback.news.rows == 200 and no_feedback.feedback.rows == 0

    with PredictionLog(log_url(home)) as log:
        ids = log.log_predictions(
            [
                {
                    "request_id": "q1",
                    "title": "Covid vaccine causes magnetism, doctors say",
                    "prob_fake": 0.3,
                    "label": 0,
                    "model_version": "v1",
                }
            ]
        )
        log.add_feedback([{"prediction_id": ids[0], "label": 1}], source="dashboard")
        relabelled = raw_titles["title"].iloc[0]  # a training headline people corrected
        log.add_feedback(
            [
                {"title": f"{relabelled}!", "label": 1 - int(raw_titles["label"].iloc[0])},
                {"title": "Hospitals report record covid admissions this week", "label": 0},
            ],
            source="import:labels.csv",
        )

    after = materialize(home, sources, {}, selection=FEEDBACK)
    assert after.result.success and all(after.checks.values())
    meta = after.metadata
    assert meta["feedback_labels"]["dagster/row_count"] == 3
    by_source = {r.data["source"]: r.data["rows"] for r in meta["feedback_labels"]["rows_by_source"].records}
    assert by_source == {"feedback:import:labels.csv": 2, "feedback:dashboard": 1}
    assert meta["validated_news"]["feedback_rows"] == 3 and meta["validated_news"]["replaced_by_feedback"] == 1
    merged = read_manifests(home)["validated_news"]
    frame = pd.read_parquet(home / merged.news.location)
    assert len(frame) == 200 - 1 + 3 and merged.key != no_feedback.key
    feedback_rows = frame[frame["source"].str.startswith("feedback")]
    assert set(feedback_rows["title"]) == {
        "Covid vaccine causes magnetism, doctors say",
        f"{relabelled}!",
        "Hospitals report record covid admissions this week",
    }
    assert relabelled not in set(frame["title"])  # the corrected row replaced the original
    assert after.check_metadata["news_quality_suite"]["rows"] == 202  # the full suite judged the merged frame

    # lineage: validated_news was made from this feedback_labels materialization
    with dg.instance_for_test() as instance:
        lineage = materialize(home, sources, {}, selection=FEEDBACK, instance=instance)
        assert lineage.result.success
        tags = instance.get_latest_materialization_event(dg.AssetKey("validated_news")).asset_materialization.tags
        feedback_version = instance.get_latest_materialization_event(
            dg.AssetKey("feedback_labels")
        ).asset_materialization.tags["dagster/data_version"]
        assert tags["dagster/input_data_version/feedback_labels"] == feedback_version

    # a bad label (a 2-character title) is quarantined, counted and shown; the rest still merges
    with PredictionLog(log_url(home)) as log:
        # 2 characters: below min_title_chars. Refused on arrival today; stored as a row from before that check.
        log.add_feedback([{"title": "ok", "label": 0}], source="dashboard", arrival_checks=False)
    held = materialize(home, sources, {}, selection=FEEDBACK)
    assert held.result.success and all(held.checks.values())
    assert held.metadata["feedback_labels"]["quarantined_rows"] == 1
    reasons = {
        r.data["reason"]: r.data["rows"] for r in held.metadata["feedback_labels"]["quarantined_by_reason"].records
    }
    assert reasons == {"title_too_short": 1}
    severity, description = held.check_descriptions["feedback_quality_suite"]
    assert severity == "ERROR" and "1 feedback row(s) quarantined" in description
    assert held.metadata["validated_news"]["feedback_rows"] == 3  # the three good labels, not the bad one
    assert "ok" not in set(pd.read_parquet(home / read_manifests(home)["validated_news"].news.location)["title"])

    # a label set that the suite rejects as a whole (a feedback batch too small for its bounds) still blocks
    blocked = materialize(
        home, sources, {"ops": {"validated_news": {"config": {"min_rows": 10_000}}}}, selection=FEEDBACK
    )
    assert not blocked.result.success and blocked.checks["news_quality_suite"] is False
    assert "validated_news" in blocked.materialized and "news_splits" not in blocked.materialized


@contextmanager
def graphql_against(instance: dg.DagsterInstance, home: Path, sources: Path):
    """A ``DagsterClient._post`` that answers from Dagster's own GraphQL schema, executed in this process against
    ``instance`` and the project's code location (what a webserver would answer; no server needed)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="fakenews_assets.definitions", attribute="defs"), location_name="fakenews"
    )
    with (
        fakenews_env(home, sources),
        WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace,
    ):

        def post(client, query: str, variables: dict | None = None) -> dict:
            result = execute_dagster_graphql(workspace.create_request_context(), query, variables or {})
            assert not result.errors, result.errors
            return result.data

        yield post


def test_one_drift_verdict_per_day_in_the_check_the_report_the_sensor_and_both_pages(loop, monkeypatch):
    """A calm day, a drifted day and a thin day: each day's verdict, the latest one and whether a retrain is asked
    for agree in the check's results, the report's metadata, the drift sensor, the Monitoring page's data and the
    Pipeline page (which reads Dagster's check executions per partition)."""
    from dagster._core.event_api import PartitionKeyFilter
    from streamlit.testing.v1 import AppTest

    from dashboards.dagster_client import DagsterClient
    from fakenews_ml.monitoring.drift_store import drift_history, drift_overview
    from fakenews_ml.monitoring.verdict import verdict_of

    expected = {SAME_DAY: "ok", COVID_DAY: "drifted", THIN_DAY: "insufficient_data"}
    check_key = dg.AssetCheckKey(dg.AssetKey("drift_report"), "drift_within_thresholds")
    for day, status in expected.items():
        verdict = verdict_of(status)
        (record,) = loop.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("drift_report"), asset_partitions=[day]), limit=1
        ).records
        meta = {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}
        assert (meta["status"], meta["verdict"], meta["retrain"]) == (status, verdict.label, verdict.retrain)
        (execution,) = loop.instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=1, partition_filter=PartitionKeyFilter(key=day)
        )
        evaluation = execution.event.dagster_event.event_specific_data
        assert (evaluation.passed, evaluation.severity.value) == (verdict.passed, verdict.severity), day
        assert evaluation.metadata["verdict"].value == verdict.label

    # the sensor asks for a retrain for exactly the days whose verdict says so
    tick = drift_sensor(dg.build_sensor_context(instance=loop.instance))
    assert [r.run_key for r in tick.run_requests] == [f"retrain-after-drift-{COVID_DAY}"]

    # the Monitoring page's data: every day, the same verdicts, the latest judged day and the failed days
    monkeypatch.setenv("FAKENEWS_HOME", str(loop.home))
    history = drift_history()
    assert dict(zip(history["partition"], history["status"], strict=True)) == expected
    assert history.set_index("partition")["retrain"].to_dict() == {SAME_DAY: False, COVID_DAY: True, THIN_DAY: False}
    summary = drift_overview(history)
    assert (summary.latest_day, summary.latest.status) == (COVID_DAY, "drifted")
    assert summary.failed_days == [THIN_DAY, COVID_DAY] and summary.drifted_days == [COVID_DAY]
    champion_version = read_meta(loop.champion)["version"]
    assert set(history["model_version"]) == {champion_version}  # the bundle's version, whichever variant served
    assert history.set_index("partition").loc[COVID_DAY, "model_variant"] in ("fp32", "bf16", "int8")

    # the Pipeline page's data: Dagster's latest check execution of every partition
    with graphql_against(loop.instance, loop.home, loop.sources) as post:
        monkeypatch.setattr(DagsterClient, "_post", post)
        info = DagsterClient("http://dagster.invalid").overview()
        assert info.ok, info.error
        check = info.check("drift_report", "drift_within_thresholds")
        assert check.partitioned and check.failed_partitions == [THIN_DAY, COVID_DAY]
        assert {p.partition: p.metadata["status"] for p in check.partitions} == expected
        assert check.failures == 2 and info.failed_checks == sum(c.failures for c in info.checks) >= 2

        # and both pages, rendered, say the same thing
        monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "http://dagster.invalid")
        banners = {}
        for name in ("monitoring", "pipeline"):
            at = AppTest.from_file(
                str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py"), default_timeout=120
            )
            at.run()
            at.switch_page(f"pages/{name}.py").run()
            assert not at.exception, [e.value for e in at.exception]
            banners[name] = [e.value for e in at.error if "Latest drift verdict" in e.value]
            if name == "pipeline":
                assert {m.label: m.value for m in at.metric}["Failed checks"] == str(info.failed_checks)
        assert banners["monitoring"] == banners["pipeline"] and len(banners["monitoring"]) == 1
        banner = banners["monitoring"][0]
        assert f"drift** on {COVID_DAY}" in banner and f"{THIN_DAY} (too little traffic)" in banner
        assert f"{COVID_DAY} (drift)" in banner and "Failed drift checks: 2 day(s)" in banner


@pytest.mark.slow
def test_the_loop_drift_sensor_retrain_with_feedback_and_the_gate(loop):
    """Reduced scenario: COVID traffic drifts -> the sensor requests a retrain -> the retrain merges the COVID
    labels people gave -> the challenger is promoted only if the gate says it is not worse."""
    instance, home = loop.instance, loop.home
    before = champion_state(home)

    tick = drift_sensor(dg.build_sensor_context(instance=instance))
    (request,) = tick.run_requests
    assert request.run_key == f"retrain-after-drift-{COVID_DAY}"
    assert DriftCursor.loads(tick.cursor).handled == [COVID_DAY]
    assert not drift_sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor)).run_requests

    with PredictionLog(log_url(home)) as log:  # people label the COVID posts they were served
        log.add_feedback(
            [{"prediction_id": pid, "label": int(label)} for pid, label in zip(loop.covid_ids, loop.covid["label"])],
            source="dashboard",
        )

    with fakenews_env(home, loop.sources):
        job = build_definitions().resolve_job_def("retrain")
        run = Run.of(
            job.execute_in_process(run_config=loop.config, instance=instance, tags=request.tags, raise_on_error=False)
        )

    manifests = read_manifests(home)
    feedback = manifests["feedback_labels"]
    assert feedback.news.rows == loop.covid["title"].nunique() and run.checks["feedback_quality_suite"]
    validated = manifests["validated_news"]
    assert validated.feedback.rows == feedback.news.rows and validated.feedback.digest == feedback.news.digest
    train = pd.read_parquet(home / manifests["news_splits"].splits["train"].location)
    assert train["source"].str.startswith("feedback:dashboard").sum() > 0.6 * feedback.news.rows  # trained on them
    trained = manifests["trained_model"]
    assert trained.reused is False and str(home / trained.bundle) != before[0]
    lineage = json.loads((home / trained.bundle / "lineage.json").read_text())
    assert lineage["parent"]["bundle"] == f"models/{Path(before[0]).name}"  # retrained from the champion it challenges
    assert lineage["feedback"]["rows"] == feedback.news.rows and lineage["sources"]
    tags = instance.get_latest_materialization_event(dg.AssetKey("validated_news")).asset_materialization.tags
    assert tags["dagster/input_data_version/feedback_labels"] == feedback.news.digest

    evaluation = manifests["model_evaluation"]
    gate = evaluation.gate
    assert str(home / evaluation.champion.bundle) == before[0] and evaluation.challenger.bundle == trained.bundle
    assert run.checks["challenger_not_worse"] is gate.passed
    assert gate.passed is (gate.challenger >= gate.champion - gate.tolerance - 1e-12)
    after = champion_state(home)
    if gate.passed:
        assert run.result.success and set(ASSET_NAMES) <= run.materialized
        assert after[0] == str(home / trained.bundle) and len(after[1]) == len(before[1]) + 1
        assert json.loads(after[1][-1])["previous"] == f"models/{Path(before[0]).name}"
        assert manifests["reference_profile"].model.serving.startswith(trained.bundle)  # profiled anew
    else:
        assert not run.result.success and "production_model" not in run.materialized
        assert after == before  # the old champion keeps serving
    runs = instance.get_runs(dg.RunsFilter(tags={"fakenews/trigger": "drift"}))
    assert len(runs) == 1 and runs[0].tags["fakenews/drift_partition"] == COVID_DAY
