"""The dashboard against real servers: a live Dagster webserver (``dagster dev`` on a small stand-in code
location) for the Pipeline page, and the whole app served by ``streamlit run`` and driven by headless
Chromium (Debian's ``chromium`` through Playwright), which also saves the README's screenshots."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
from streamlit.testing.v1 import AppTest

from dashboards.dagster_client import DagsterClient
from fakenews_ml.monitoring.prediction_log import PredictionLog

from .conftest import APP, SECRET_DIR, SIGNED_QUERY, app_env

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Test artefacts (git-ignored); FAKENEWS_SCREENSHOTS=docs/screenshots refreshes the README's copies.
SCREENSHOTS = Path(
    os.environ.get("FAKENEWS_SCREENSHOTS") or Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
)
MAX_SCREENSHOT_BYTES = 300_000
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
)
DEFS = Path(__file__).with_name("dagster_defs.py")


def wait_until(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server we started (and the processes it started: it leads its own session)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


@pytest.fixture(scope="module")
def dagster_server(tmp_path_factory, port_finder, dashboard_home):
    """``dagster dev`` on the stand-in definitions, with a throwaway DAGSTER_HOME (and the dashboard's
    FAKENEWS_HOME, whose drift reports its stand-in drift check judges): (URL, DAGSTER_HOME)."""
    root = tmp_path_factory.mktemp("dagster")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = port_finder()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_TELEMETRY_DISABLED="1",
        NO_PROXY="127.0.0.1,localhost",
        FAKENEWS_HOME=str(dashboard_home["home"]),
    )
    log = root / "dagster.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-f", str(DEFS), "-h", "127.0.0.1", "-p", str(port)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        client = DagsterClient(url)
        wait_until(
            lambda: process.poll() is not None or client.overview().jobs,
            150,
            f"dagster dev at {url}:\n{tail(log)}",
            1.0,
        )
        assert process.poll() is None, f"dagster dev exited:\n{tail(log)}"
        yield url, home
    finally:
        stop(process)


@pytest.fixture(scope="module")
def dagster_url(dagster_server) -> str:
    return dagster_server[0]


def test_dagster_client_reads_a_live_webserver(dagster_url):
    client = DagsterClient(dagster_url)
    info = wait_until(
        lambda: (o := client.overview()).ok and any(i.ticks for i in o.instigators) and o, 90, "a sensor tick"
    )
    assert info.version and info.locations
    assert ("retrain" in {job for _, _, job in info.jobs}) and client.find_job(info)[2] == "retrain"
    assert {a.key for a in info.assets} == {"raw_news", "validated_news", "production_model", "drift_report"}
    assert {(c.asset, c.name, c.blocking) for c in info.checks} == {
        ("validated_news", "validated_news_quality", True),
        ("production_model", "production_model_gate", False),
        ("drift_report", "drift_within_thresholds", False),
    }
    sensor = next(i for i in info.instigators if i.name == "drift_sensor")
    assert sensor.status == "RUNNING" and sensor.ticks[0].status == "SKIPPED"
    assert sensor.ticks[0].skip_reason == "the latest drift check passed"
    assert next(i for i in info.instigators if i.name == "weekly_retrain").status == "STOPPED"

    wrong = client.launch_job(info.locations[0][0], info.locations[0][1], "no_such_job")
    assert not wrong.ok and "no_such_job" in wrong.message


def test_pipeline_page_launches_the_retrain_job_and_shows_its_results(dagster_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", dagster_url)
    monkeypatch.delenv("FAKENEWS_RETRAIN_JOB", raising=False)
    monkeypatch.delenv("FAKENEWS_RETRAIN_RUN_CONFIG", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/pipeline.py").run()
    assert not at.exception and not at.warning
    launch = next(b for b in at.button if b.label == "Launch retrain…")
    launch.click().run()
    assert not at.exception and not at.success  # one click only shows the plan
    plan = " ".join(m.value for m in at.markdown)
    assert "Launch `retrain`?" in plan and "3 asset(s)" in plan
    assert all(f"`{name}`" in plan for name in ("raw_news", "validated_news", "production_model"))
    assert "each asset's defaults" in plan and at.json[0].value == "{}"
    at.button(key="cancel_launch").click().run()
    assert not at.success and not at.json  # cancelled: nothing launched, the plan is gone
    # the run config drift-triggered retrains use (FAKENEWS_RETRAIN_RUN_CONFIG) is shown and launched as well
    monkeypatch.setenv("FAKENEWS_RETRAIN_RUN_CONFIG", str(tmp_path / "missing.yaml"))
    next(b for b in at.button if b.label == "Launch retrain…").click().run()
    assert any("FAKENEWS\\_RETRAIN\\_RUN\\_CONFIG" in e.value and "no such file" in e.value for e in at.error)
    assert at.button(key="confirm_launch").disabled
    config = tmp_path / "retrain.yaml"
    config.write_text("loggers:\n  console:\n    config:\n      log_level: WARNING\n")
    monkeypatch.setenv("FAKENEWS_RETRAIN_RUN_CONFIG", str(config))
    next(b for b in at.button if b.label == "Launch retrain…").click().run()
    assert json.loads(at.json[0].value) == {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    at.button(key="confirm_launch").click().run()
    assert not at.exception
    success = [s.value for s in at.success]
    assert success and "Launched" in success[0]
    run_links = [b.proto.url for b in at.get("link_button")]
    assert len(run_links) == 1 and run_links[0].startswith(f"{dagster_url}/runs/")

    client = DagsterClient(dagster_url)
    finished = wait_until(
        lambda: (o := client.overview()).recent_runs and o.recent_runs[0].status in ("SUCCESS", "FAILURE") and o,
        120,
        "the retrain run to finish",
    )
    assert finished.recent_runs[0].status == "SUCCESS" and finished.recent_runs[0].job == "retrain"
    assert {a.key for a in finished.assets if a.last_materialized} == {"raw_news", "validated_news", "production_model"}
    statuses = {c.name: c.status for c in finished.checks}
    assert statuses == {
        "validated_news_quality": "SUCCEEDED",
        "production_model_gate": "FAILED",
        "drift_within_thresholds": "NOT_RUN",
    }

    at.button(key="refresh_dagster").click().run()
    tables = " ".join(d.value.to_string() for d in at.dataframe)
    assert "✓ success" in tables and "✗ failed" in tables and "production_model_gate" in tables
    # run ids are links to the run's page in the Dagster UI; an ad-hoc materialization is named by its assets
    runs = at.dataframe[0].value
    assert list(runs["run"]) == [f"{dagster_url}/runs/{finished.recent_runs[0].run_id}"]
    assert "__ASSET_JOB" not in tables


# ----- the browser ----------------------------------------------------------------------------------------


@pytest.fixture
def streamlit_server(dashboard_home, dagster_url, tmp_path, port_finder):
    port = port_finder()
    log = tmp_path / "streamlit.log"
    env = app_env(
        dashboard_home["home"], DAGSTER_WEBSERVER_URL=dagster_url, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"
    )
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(APP),
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.trust_env = False

    def healthy() -> bool:
        if process.poll() is not None:
            return True
        try:
            return session.get(f"{url}/_stcore/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, 90, f"streamlit at {url}")
        assert process.poll() is None, f"streamlit exited:\n{tail(log)}"
        yield url
    finally:
        stop(process)
        if log.exists():
            print(tail(log, 20))


def wait_idle(page, timeout_ms: int = 90_000) -> None:
    """Until Streamlit has finished the current script run (its 'running' widget is gone)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_timeout(500)


def screenshot(page, name: str) -> Path:
    """The whole page (the viewport grows to the content, up to 3,000 px) as <SCREENSHOTS>/<name>.png,
    reduced to 256 colours when over the README's size budget."""
    from PIL import Image

    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return m ? m.scrollHeight : document.body.scrollHeight; }"
    )
    page.set_viewport_size({"width": 1280, "height": int(min(max(height + 120, 800), 3000))})
    page.wait_for_timeout(1500)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    png = page.screenshot()
    if len(png) > MAX_SCREENSHOT_BYTES:
        image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        png = buffer.getvalue()
    if len(png) > MAX_SCREENSHOT_BYTES:
        image = Image.open(io.BytesIO(png))
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        png = buffer.getvalue()
    path.write_bytes(png)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert path.stat().st_size <= MAX_SCREENSHOT_BYTES
    return path


def judge_drift_days(dagster_home: Path, days: list[str]) -> None:
    """Materialize the stand-in drift_report and its check for ``days`` into the instance ``dagster dev`` serves
    (the check judges the dashboard's real drift reports), as the drift job would have."""
    import importlib.util
    import warnings

    import dagster as dg

    spec = importlib.util.spec_from_file_location("dagster_defs_standin", DEFS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            for day in days:
                result = dg.materialize(
                    [module.drift_report, module.drift_within_thresholds], partition_key=day, instance=instance
                )
                assert result.success


def verdict_banner(page) -> str:
    box = page.locator("[data-testid='stAlertContainer']", has_text="Latest drift verdict").first
    box.wait_for(timeout=60_000)
    return " ".join(box.inner_text().split())


@needs_chromium
def test_browser_classifies_uploads_and_screenshots_every_page(streamlit_server, dashboard_home, dagster_server):
    """... and, after a drifted day, shows the same drift verdict on the Monitoring and Pipeline pages."""
    from playwright.sync_api import sync_playwright

    drift_days = dashboard_home["drift"]["days"]
    judge_drift_days(dagster_server[1], [drift_days["calm"], drift_days["drifted"]])

    headline = "You won't believe the secret miracle cure they exposed !!!"
    titles = [f"Court ruling on the city budget, part {i}" for i in range(12)]
    csv = pd.DataFrame({"title": titles, "desk": "politics"}).to_csv(index=False).encode()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.goto(streamlit_server)
            page.get_by_text("Is this headline fake?").wait_for(timeout=90_000)
            wait_idle(page)

            # one headline -> verdict -> feedback
            page.get_by_role("textbox", name="Headline").fill(headline)
            page.get_by_role("button", name="Classify", exact=True).click()
            page.get_by_text("Likely", exact=False).first.wait_for(timeout=90_000)
            wait_idle(page)
            with PredictionLog() as log:
                row = log.recent(1).iloc[0]
            assert (row.title, row.origin) == (headline, "dashboard")
            page.get_by_role("button", name="This is fake").click()
            page.get_by_text("Stored your label").wait_for(timeout=30_000)
            with PredictionLog() as log:
                feedback = log.feedback_table()
            assert int(feedback.iloc[-1].prediction_id) == int(row.id) and int(feedback.iloc[-1].label) == 1
            wait_idle(page)
            body = page.inner_text("body")
            for secret in (str(dashboard_home["home"]), SECRET_DIR, SIGNED_QUERY):
                assert secret not in body
            screenshot(page, "predict")

            # a CSV upload -> progress -> table -> download
            page.get_by_role("tab", name="A CSV of headlines").click()
            page.locator("input[type='file']").set_input_files(
                files=[{"name": "headlines.csv", "mimeType": "text/csv", "buffer": csv}]
            )
            page.get_by_role("button", name="Classify 12 headline(s)").click()
            download_button = page.get_by_role("button", name="Download results (CSV)")
            download_button.wait_for(timeout=90_000)
            wait_idle(page)
            with PredictionLog() as log:
                logged = log.recent(12)
            assert sorted(logged["title"]) == sorted(titles) and set(logged["origin"]) == {"dashboard"}
            with page.expect_download() as download:
                download_button.click()
            result = pd.read_csv(download.value.path())
            assert list(result["title"]) == titles and list(result["desk"]) == ["politics"] * 12
            assert result["prob_fake"].between(0, 1).all() and set(result["verdict"]) <= {"fake", "real"}
            screenshot(page, "predict_csv")

            # the other pages
            page.goto(f"{streamlit_server}/monitoring")
            page.get_by_text("Latest drift verdict").first.wait_for(timeout=60_000)
            wait_idle(page)
            report = page.frame_locator("iframe").first.frame_locator("iframe").first
            report.locator("body").get_by_text("Drift", exact=False).first.wait_for(timeout=60_000)
            monitoring_verdict = verdict_banner(page)
            screenshot(page, "monitoring")

            page.goto(f"{streamlit_server}/models")
            page.get_by_text(f"Champion {dashboard_home['version']}").wait_for(timeout=60_000)
            wait_idle(page)
            assert SECRET_DIR not in page.inner_text("body")
            screenshot(page, "models")

            page.goto(f"{streamlit_server}/pipeline")
            page.get_by_role("button", name="Launch retrain…").wait_for(timeout=60_000)
            wait_idle(page)
            pipeline_verdict = verdict_banner(page)
            body = page.inner_text("body")
            screenshot(page, "pipeline")
        finally:
            browser.close()
    # one verdict: the same words on both pages, from the report files and from Dagster's check executions
    assert monitoring_verdict == pipeline_verdict, (monitoring_verdict, pipeline_verdict)
    assert f"Latest drift verdict: drift on {drift_days['drifted']}" in monitoring_verdict
    assert f"Failed drift checks: 1 day(s): {drift_days['drifted']} (drift)" in monitoring_verdict
    info = DagsterClient(dagster_server[0]).overview()
    assert info.check("drift_report", "drift_within_thresholds").failed_partitions == [drift_days["drifted"]]
    shown = re.search(r"Failed checks\s+(\d+)", body)
    assert shown and int(shown.group(1)) == info.failed_checks  # failed partitions counted, as Dagster does
    for name in ("predict", "predict_csv", "monitoring", "models", "pipeline"):
        assert 0 < (SCREENSHOTS / f"{name}.png").stat().st_size <= MAX_SCREENSHOT_BYTES


def dagster_text(page) -> str:
    return " ".join(page.inner_text("body").split())


def skip_community_dialog(page) -> None:
    """Dismiss the Dagster UI's first-visit "Join the Dagster community" dialog (it would cover a screenshot)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialog = page.get_by_text("Join the Dagster community")
    try:
        dialog.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        return
    page.get_by_role("button", name="Skip").click()
    dialog.wait_for(state="detached", timeout=10_000)


@needs_chromium
def test_dagster_ui_shows_the_same_drift_verdict(dagster_server, dashboard_home):
    """The Dagster UI itself, after a drifted day, says what the dashboard says: the drift_report asset's page
    names the drifted day, and its checks view shows drift_within_thresholds failed for that day's partition
    with the project's verdict and reason (saved as dagster_asset.png and dagster_checks.png)."""
    from playwright.sync_api import sync_playwright

    from fakenews_ml.monitoring.drift_store import drift_history
    from fakenews_ml.monitoring.verdict import verdict_of

    url, dagster_home = dagster_server
    drift_days = dashboard_home["drift"]["days"]
    drifted = drift_days["drifted"]
    judge_drift_days(dagster_home, [drift_days["calm"], drift_days["drifted"]])
    day = drift_history().set_index("partition").loc[drifted]  # what the Monitoring page reads
    verdict = verdict_of(day["status"])
    assert (day["status"], verdict.label, verdict.passed) == ("drifted", "drift", False)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/assets/drift_report")
            page.get_by_text("Latest materialization").wait_for(timeout=120_000)
            skip_community_dialog(page)
            page.get_by_text("Latest check results").wait_for(timeout=60_000)
            page.get_by_text(drifted, exact=True).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            asset_text = dagster_text(page)
            screenshot(page, "dagster_asset")

            page.goto(f"{url}/assets/drift_report?view=checks")
            page.get_by_text("Evaluation result").wait_for(timeout=120_000)
            skip_community_dialog(page)
            page.get_by_text("verdict", exact=True).wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            checks_text = dagster_text(page)
            screenshot(page, "dagster_checks")
        finally:
            browser.close()

    assert "Join the Dagster community" not in asset_text + checks_text  # dismissed, not in the screenshots
    assert "drift_report" in asset_text
    assert re.search(rf"Latest materialization (\S+ ){{0,4}}{drifted}\b", asset_text), asset_text
    assert "Checks (1)" in checks_text and "drift_within_thresholds Failed" in checks_text
    # the latest execution: the drifted day's partition, failed, with the verdict and reason the dashboard shows
    assert f"Partition {drifted}" in checks_text and "Evaluation result Failed" in checks_text
    assert f"verdict {verdict.label}" in checks_text and f"status {day['status']}" in checks_text
    assert f"retrain {str(verdict.retrain).lower()}" in checks_text
    assert " ".join(str(day["reason"]).split()) in checks_text
    for name in ("dagster_asset", "dagster_checks"):
        assert 0 < (SCREENSHOTS / f"{name}.png").stat().st_size <= MAX_SCREENSHOT_BYTES
