"""The graph as a user runs it: `dagster asset materialize --select '*reference_profile'` (the training graph) in a
subprocess on a sample of the real FakeNewsNet titles, twice (the second run reuses the bundle), and `dagster dev`
answering GraphQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from fakenews_ml.wandb_offline import finished_offline_runs

from .conftest import (
    ALL_ASSET_NAMES,
    ASSET_NAMES,
    CHECKS,
    GOOD_TRAINING,
    MONITORING_CHECKS,
    OFFLINE_ENV,
    STUDENT_TRAINING,
    champion_state,
    read_manifests,
)

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _dagster_home(tmp_path: Path) -> Path:
    """An instance home configured by the repository's dagster.yaml (queued runs, pool limits, no telemetry)."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


def _env(tmp_path: Path, **extra) -> dict:
    env = {**os.environ, **OFFLINE_ENV, "DAGSTER_HOME": str(_dagster_home(tmp_path)), "PYTHONPATH": str(REPO), **extra}
    for key in ("FAKENEWS_GCS_BUCKET", "WANDB_API_KEY"):
        env.pop(key, None)
    return env


@pytest.mark.slow
def test_headless_materialize_twice_on_a_real_sample(tmp_path, datasets_dir, tiny_encoder_dir):
    sample = pd.read_csv(datasets_dir / "fakenewsnet_titles.csv").sample(600, random_state=0)
    sources = tmp_path / "sources" / "fakenewsnet_sample.csv"
    sources.parent.mkdir()
    sample.to_csv(sources, index=False)
    config = tmp_path / "run_config.json"
    config.write_text(
        json.dumps(
            {
                "ops": {
                    "tokenized_news": {"config": {"encoder": str(tiny_encoder_dir), "max_length": 32}},
                    "trained_model": {"config": {**GOOD_TRAINING, "max_steps": 8}},
                    "reference_profile": {"config": {"sample_size": 50}},
                    # one headline of a 60-row test split is 1.7%: the default bounds are meant for the full data
                    "quantized_model": {"config": {"max_accuracy_drop": 0.1, "min_agreement": 0.8}},
                    # ... and so are the student's bounds against its teacher
                    "distilled_model": {
                        "config": {**STUDENT_TRAINING, "max_macro_f1_drop": 0.5, "max_roc_auc_drop": 0.5}
                    },
                },
                "resources": {"compute": {"config": {"accelerator": "cpu", "precision": "32-true"}}},
            }
        )
    )
    home = tmp_path / "fakenews_home"
    env = _env(tmp_path, FAKENEWS_HOME=str(home), FAKENEWS_SOURCES=str(sources), WANDB_MODE="offline")
    # the training graph: everything reference_profile is made from (the daily drift reports are per partition)
    command = [
        DAGSTER,
        "asset",
        "materialize",
        "--select",
        "*reference_profile",
        "-m",
        "fakenews_assets.definitions",
        "--config",
        str(config),
    ]

    first = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-5000:]
    assert "RUN_SUCCESS" in log
    for check in CHECKS:
        assert re.search(rf"Asset check '{check}' on '\w+' passed", log), check
    manifests = read_manifests(home)
    assert set(manifests) == set(ASSET_NAMES)
    assert manifests["raw_news"].news.rows == 600
    trained = manifests["trained_model"]
    assert trained.reused is False
    target, history = champion_state(home)
    assert target == str(home / trained.bundle) and len(history) == 1
    assert trained.wandb_run["mode"] == "offline" and trained.wandb_run["id"]
    assert list((home / "wandb" / "wandb").glob(f"offline-run-*-{trained.wandb_run['id']}")), "logged to W&B offline"
    # the bundle's artifact, and the promotion's champion alias on the very same version (same files, same digest)
    runs = {run.job_type: run for run in finished_offline_runs(home / "wandb")}
    (logged,) = runs["train"].artifacts
    (champion,) = runs["promotion"].artifacts
    assert logged.digest == trained.wandb_run["artifact"]["digest"] == champion.digest
    assert "champion" in champion.aliases and "model.safetensors" in logged.files
    weights = home / trained.bundle / "model.safetensors"
    mtime = weights.stat().st_mtime_ns

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, (second.stdout + second.stderr)[-5000:]
    again = read_manifests(home)
    assert again["trained_model"].reused is True and again["trained_model"].bundle == trained.bundle
    assert again["quantized_model"].reused is True
    assert again["trained_model"].wandb_run["id"] == trained.wandb_run["id"]  # lineage survives reuse
    assert again["production_model"].promoted is False
    assert weights.stat().st_mtime_ns == mtime
    assert champion_state(home) == (target, history)

    # the instance (SQLite under DAGSTER_HOME) recorded the data and code versions the assets reported
    from dagster import AssetKey, DagsterInstance

    from fakenews_ml.code_versions import code_version

    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        tags = instance.get_latest_materialization_event(AssetKey("raw_news")).asset_materialization.tags
        assert tags["dagster/data_version"] == manifests["raw_news"].data_version
        assert tags["dagster/code_version"] == code_version("fakenews_ml.stages.ingest")


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group we started (dagster dev and its webserver, daemon, code server)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


GRAPHQL_QUERY = """
{
  assetNodes { assetKey { path } groupName assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } schedules { name cronSchedule } sensors { name } } } }
}
"""


def _query_when_ready(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 180) -> dict:
    """Poll the GraphQL endpoint until the code location has loaded (or dagster dev died)."""
    session = requests.Session()
    session.trust_env = False  # straight to 127.0.0.1, never through a proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited:\n" + log_path.read_text()[-3000:]
        try:
            response = session.post(f"http://127.0.0.1:{port}/graphql", json={"query": GRAPHQL_QUERY}, timeout=10)
            if response.status_code == 200:
                data = response.json().get("data") or {}
                if data.get("assetNodes"):
                    return data
        except (requests.ConnectionError, requests.Timeout, ValueError):
            pass
        time.sleep(1)
    raise AssertionError("dagster dev did not serve the asset graph in time:\n" + log_path.read_text()[-3000:])


@pytest.mark.slow
def test_dagster_dev_serves_the_graph_over_graphql(tmp_path, port_finder):
    port = port_finder()
    log_path = tmp_path / "dagster_dev.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [DAGSTER, "dev", "-m", "fakenews_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path,
            env=_env(tmp_path, FAKENEWS_HOME=str(tmp_path / "fakenews_home")),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped below
        )
        try:
            data = _query_when_ready(process, port, log_path)
        finally:
            _stop_group(process)
    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    assert set(nodes) == set(ALL_ASSET_NAMES)
    assert nodes["trained_model"]["groupName"] == "training"
    assert nodes["drift_report"]["groupName"] == "monitoring"
    checks = {
        check["name"]: check["blocking"]
        for node in nodes.values()
        for check in node["assetChecksOrError"].get("checks", [])
    }
    assert checks == {**dict.fromkeys(CHECKS, True), **dict.fromkeys(MONITORING_CHECKS, False)}
    (repository,) = data["repositoriesOrError"]["nodes"]
    assert {"full_pipeline", "retrain", "drift_job"} <= {job["name"] for job in repository["jobs"]}
    assert {"name": "weekly_retrain", "cronSchedule": "0 3 * * 1"} in repository["schedules"]
    assert {"name": "daily_drift_schedule", "cronSchedule": "15 0 * * *"} in repository["schedules"]
    assert {s["name"] for s in repository["sensors"]} == {"drift_sensor", "prediction_volume_sensor"}
    assert process.returncode is not None
