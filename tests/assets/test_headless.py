"""The graph as a user runs it, with the `dagster` commands the README gives (read from README.md, so the two
cannot drift apart): `dagster asset materialize` of the training graph in a subprocess on a sample of the real
FakeNewsNet titles, twice (the second run reuses the bundle), and `dagster dev` answering GraphQL, whose sensor is
the one the README's `dagster sensor stop drift_sensor` stops."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
from deploy.processes import stop_group

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


def readme_dagster_commands() -> list[list[str]]:
    """Every `dagster ...` command in README.md: lines of its bash blocks and inline code spans, comments dropped."""
    text = (REPO / "README.md").read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        found += [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("dagster ")]
    found += re.findall(r"`(dagster [^`]+)`", text)
    commands = []
    for line in found:
        command = shlex.split(line)
        if command not in commands:
            commands.append(command)
    return commands


def readme_command(*prefix: str) -> list[str]:
    """The README's one command that starts with ``prefix`` (e.g. "sensor", "stop"), with the real executable."""
    (command,) = [c for c in readme_dagster_commands() if c[1 : 1 + len(prefix)] == list(prefix)]
    return [DAGSTER, *command[1:]]


def test_the_readme_gives_the_commands_that_address_the_ui_location():
    commands = readme_dagster_commands()
    kinds = {"dev" if c[1] == "dev" else " ".join(c[1:3]) for c in commands}
    assert {"dev", "asset materialize", "sensor stop", "sensor start"} <= kinds, commands
    for command in commands:
        if command[1:3] == ["asset", "materialize"]:  # in-process: it needs the module (no workspace is read)
            assert command[command.index("-m") + 1] == "fakenews_assets.definitions", command
        else:  # dev, sensor, schedule: the code location of [tool.dagster], as `dagster dev` loads it
            assert not {"-m", "-f", "-w", "--module-name", "--python-file", "--workspace"} & set(command), command
    # the daemon keys a sensor's on/off state by code location name, repository and sensor name: the workspace file
    # (for `-w workspace.yaml`) must name the location as [tool.dagster] does
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert tool == {"module_name": "fakenews_assets.definitions", "code_location_name": "fakenews"}
    (entry,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"]["module_name"] == tool["module_name"]
    assert entry["python_module"]["location_name"] == tool["code_location_name"]


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
    command = [*readme_command("asset", "materialize"), "--config", str(config)]
    assert "*reference_profile" in command

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


GRAPHQL_QUERY = """
{
  assetNodes { assetKey { path } groupName assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { location { name } jobs { name } schedules { name cronSchedule }
    sensors { name sensorState { id selectorId status } } } } }
}
"""


def _sensor_states(port: int) -> dict[str, dict]:
    """What the running `dagster dev` says about its sensors: name -> {id (the origin's), selectorId, status}."""
    session = requests.Session()
    session.trust_env = False
    data = session.post(f"http://127.0.0.1:{port}/graphql", json={"query": GRAPHQL_QUERY}, timeout=30).json()["data"]
    (repository,) = data["repositoriesOrError"]["nodes"]
    return {s["name"]: s["sensorState"] for s in repository["sensors"]}


def _daemon_view(env: dict, selector_id: str) -> str:
    """The stored state of a sensor as the daemon finds it: by its selector (code location, repository, name)."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType

    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        states = {s.selector_id: s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)}
    return states[selector_id].status.value if selector_id in states else "no state stored"


def _cli(command: list[str], env: dict) -> str:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, (command, (done.stdout + done.stderr)[-3000:])
    return done.stdout + done.stderr


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
def test_dagster_dev_serves_the_graph_and_the_readme_stops_its_sensor(tmp_path, port_finder):
    port = port_finder()
    log_path = tmp_path / "dagster_dev.log"
    env = _env(tmp_path, FAKENEWS_HOME=str(tmp_path / "fakenews_home"))
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*readme_command("dev"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,  # as the README says: from the repository root
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped below
        )
        try:
            data = _query_when_ready(process, port, log_path)
            before = _sensor_states(port)
            assert before["drift_sensor"]["status"] == "RUNNING"
            # the trap the README avoids: another target is another origin, and "Stopped" is about another sensor
            wrong = _cli([DAGSTER, "sensor", "stop", "drift_sensor", "-m", "fakenews_assets.definitions"], env)
            assert "Stopped" in wrong and _sensor_states(port)["drift_sensor"]["status"] == "RUNNING"

            _cli(readme_command("sensor", "stop"), env)
            after = _sensor_states(port)
            assert after["drift_sensor"]["status"] == "STOPPED"  # the one the UI and the daemon use
            assert after["prediction_volume_sensor"]["status"] == "RUNNING"
            assert after["drift_sensor"]["selectorId"] == before["drift_sensor"]["selectorId"]
            assert _daemon_view(env, after["drift_sensor"]["selectorId"]) == "STOPPED"

            _cli(readme_command("sensor", "start"), env)
            assert _sensor_states(port)["drift_sensor"]["status"] == "RUNNING"
            assert _daemon_view(env, after["drift_sensor"]["selectorId"]) == "RUNNING"
        finally:
            stop_group(process, grace_s=30)  # dagster dev and its webserver, daemon, code server
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
    assert repository["location"]["name"] == "fakenews"
    assert {"full_pipeline", "retrain", "drift_job"} <= {job["name"] for job in repository["jobs"]}
    assert {"name": "weekly_retrain", "cronSchedule": "0 3 * * 1"} in repository["schedules"]
    assert {"name": "daily_drift_schedule", "cronSchedule": "15 0 * * *"} in repository["schedules"]
    assert {s["name"] for s in repository["sensors"]} == {"drift_sensor", "prediction_volume_sensor"}
    assert process.returncode is not None
