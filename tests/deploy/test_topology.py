"""The compose topology as processes on 127.0.0.1, end to end, on the real PostgreSQL.

What docker-compose.yml starts, started from the same files: the code server (the user-code image's command),
dagster-webserver and dagster-daemon (their compose entrypoints, docker/workspace.yaml), the API and the
dashboard (their compose commands), each with its compose environment. The instance is docker/dagster.yaml
with only the run launcher swapped by the documented override (docker/run_launcher.local.yaml: runs start as
subprocesses of the code server, not containers). Addresses change (127.0.0.1, free ports, temporary
folders), nothing else.

Black box: the test talks to the webserver's GraphQL API, the API's HTTP endpoints, the files under
FAKENEWS_HOME and the prediction log, so it survives changes inside the asset code:
  1. full_pipeline on a tiny sample (launched over GraphQL, queued, started by the daemon) promotes a champion;
  2. the API serves it and logs drifted traffic (COVID-19 posts) into the Postgres prediction log;
  3. drift_job for today's partition fails its drift check, and the daemon's drift_sensor launches retrain.
Every process is stopped by its PID (process group) at the end, whatever happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
from assets.conftest import OFFLINE_ENV, run_config
from assets.data import write_news_csv
from sqlalchemy.engine import make_url

from .files import DOCKER, ENV_EXAMPLE, load_compose, read_env_file, service_command, with_options
from .processes import stop_group

BIN = Path(sys.executable).parent
LOCATION = "fakenews"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
TRAFFIC_ROWS = 240  # above drift_report's default minimum of 200 predictions a day


class GraphQLError(AssertionError):
    pass


@dataclass
class Topology:
    root: Path
    env: dict[str, dict[str, str]]  # service -> environment
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        self.session.trust_env = False  # straight to 127.0.0.1, never through a proxy

    def start(self, name: str, command: list[str]) -> None:
        log = (self.root / f"{name}.log").open("w")
        executable = BIN / command[0]
        self.processes[name] = subprocess.Popen(
            [str(executable), *command[1:]],
            cwd=self.root,
            env=self.env[name],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: run workers it spawns are stopped with it
        )
        log.close()

    def stop_all(self) -> None:
        for process in self.processes.values():
            stop_group(process)

    def logs(self, tail: int = 2500) -> str:
        return "\n".join(
            f"----- {name} -----\n{(self.root / f'{name}.log').read_text(errors='replace')[-tail:]}"
            for name in self.processes
        )

    def alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}\n{self.logs()}")

    def graphql(self, query: str, **variables) -> dict:
        url = f"http://127.0.0.1:{self.ports['webserver']}/graphql"
        response = self.session.post(url, json={"query": query, "variables": variables}, timeout=30)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise GraphQLError(f"HTTP {response.status_code}: {body.get('errors')}")
        return body["data"]

    def wait(self, what: str, ready, timeout: float, every: float = 2.0):
        """Poll ``ready()`` until it returns something truthy; fail with every process's log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            try:
                value = ready()
            except (requests.ConnectionError, requests.Timeout, ValueError, GraphQLError):
                value = None
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")


LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on RepositoryLocation { repositories { name jobs { name } sensors { name } } }
                          ... on PythonError { message } } } } } }
"""
LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on Error { message } } }
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId jobName status tags { key value } } } }
"""
RUNS_BY_TAG = """
query($key: String!, $value: String!) { runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
  ... on Runs { results { runId jobName status tags { key value } } } } }
"""
STEP_FAILURES = """
query($id: ID!) { logsForRun(runId: $id) { __typename ... on EventConnection { events { __typename
  ... on ExecutionStepFailureEvent { stepKey error { message } } ... on RunFailureEvent { message } } } } }
"""
DRIFT_CHECK = """
{ assetNodes(assetKeys: [{path: ["drift_report"]}]) { assetChecksOrError { ... on AssetChecks { checks { name
  executionForLatestMaterialization { status partition evaluation { success severity } } } } } } }
"""


def launch(topology: Topology, job: str, config: dict, tags: dict[str, str] | None = None) -> str:
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": job},
        "runConfigData": config,
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    result = topology.graphql(LAUNCH, params=params)["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def run_status(topology: Topology, run_id: str) -> dict:
    return topology.graphql(RUN, id=run_id)["runOrError"]


def wait_for_run(topology: Topology, run_id: str, timeout: float) -> dict:
    run = topology.wait(
        f"run {run_id}", lambda: (r := run_status(topology, run_id))["status"] in FINISHED and r, timeout
    )
    if run["status"] != "SUCCESS":
        events = topology.graphql(STEP_FAILURES, id=run_id)["logsForRun"].get("events", [])
        failures = [e for e in events if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")]
        raise AssertionError(f"{run['jobName']} {run['status']}: {json.dumps(failures)[:4000]}\n{topology.logs()}")
    return run


def drifted_titles(datasets_dir: Path, n: int) -> list[str]:
    """COVID-19 posts (Constraint@AAAI-2021): another domain and era than the synthetic training news."""
    posts = pd.read_csv(datasets_dir / "constraint_covid19.csv")["title"].dropna().astype(str)
    posts = posts[posts.str.len().between(20, 300)].drop_duplicates()
    return posts.sample(n=n, random_state=0).tolist()


DAGSTER_IMAGE_SERVICES = ("dagster_init", "webserver", "daemon")  # DAGSTER_HOME is set in their image only


def compose_env(service: str, dotenv: dict[str, str], overrides: dict[str, str], dagster_home: Path) -> dict[str, str]:
    """The environment docker compose gives ``service`` (from ``dotenv``), with host-specific ``overrides`` (for
    the variables the service has); nothing of this process's own fakenews or Dagster settings leaks in."""
    declared = {k: str(v) for k, v in load_compose(dotenv)["services"][service].get("environment", {}).items()}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FAKENEWS_", "DAGSTER_"))}
    env = {**inherited, **OFFLINE_ENV, **declared, **{k: v for k, v in overrides.items() if k in declared}}
    if service in DAGSTER_IMAGE_SERVICES:
        env["DAGSTER_HOME"] = str(dagster_home)
    return env


@pytest.mark.slow
def test_compose_topology_as_processes_trains_serves_and_retrains_on_drift(
    tmp_path, postgres_databases, port_finder, tiny_encoder_dir, datasets_dir
):
    started = time.monotonic()
    instance_db = make_url(postgres_databases.create("dagster"))
    log_db = make_url(postgres_databases.create("log"))
    home = tmp_path / "fakenews_home"
    sources = write_news_csv(tmp_path / "sources" / "news.csv", n=300, seed=0)
    # a reference profile of 200 training rows: the drift test's default minimum
    training = run_config(tiny_encoder_dir, reference_profile={"sample_size": 200, "split": "train"})
    retrain_config = tmp_path / "retrain_run_config.yaml"  # what the drift sensor's retrain run uses
    retrain_config.write_text(yaml.safe_dump(training))

    # DAGSTER_HOME as docker/README.md says to make it without a Docker engine
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    merged = subprocess.run(
        [
            sys.executable,
            str(DOCKER / "merge_instance_yaml.py"),
            str(DOCKER / "dagster.yaml"),
            str(DOCKER / "run_launcher.local.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (dagster_home / "dagster.yaml").write_text(merged.stdout)

    ports = {name: port_finder() for name in ("user_code", "webserver", "api", "dashboard")}
    dotenv = {
        **read_env_file(ENV_EXAMPLE),
        "POSTGRES_USER": instance_db.username or "postgres",
        "POSTGRES_PASSWORD": instance_db.password or "unused-with-trust-auth",
        "POSTGRES_DB": instance_db.database,
        "PREDICTION_LOG_DB": log_db.database,
        "FAKENEWS_SOURCES": str(sources),
        "WANDB_MODE": "disabled",
    }
    compose_log_url = make_url(load_compose(dotenv)["services"]["api"]["environment"]["FAKENEWS_PREDICTION_LOG_URL"])
    log_url = compose_log_url.set(host=log_db.host, port=log_db.port).render_as_string(hide_password=False)
    on_this_machine = {
        # the compose service names and container paths, mapped to this machine
        "DAGSTER_POSTGRES_HOST": instance_db.host or "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(instance_db.port or 5432),
        "FAKENEWS_CODE_SERVER_HOST": "127.0.0.1",
        "FAKENEWS_CODE_SERVER_PORT": str(ports["user_code"]),
        "FAKENEWS_HOME": str(home),
        "DAGSTER_COMPUTE_LOG_DIR": str(tmp_path / "compute_logs"),
        "FAKENEWS_PREDICTION_LOG_URL": log_url,
        "DAGSTER_WEBSERVER_URL": f"http://127.0.0.1:{ports['webserver']}",
    }
    services = ("dagster_init", "user_code", "webserver", "daemon", "api", "dashboard")
    env = {name: compose_env(name, dotenv, on_this_machine, dagster_home) for name in services}
    # test-only, for the code server (sensors) and its runs: retrain with the tiny settings, and drift reports
    # only when the test asks for one (no prediction-volume trigger)
    env["user_code"].update(
        FAKENEWS_RETRAIN_RUN_CONFIG=str(retrain_config),
        FAKENEWS_DRIFT_EVERY_N="1000000",
        TOKENIZERS_PARALLELISM="false",
    )
    topology = Topology(tmp_path, env, ports)
    workspace = str(DOCKER / "workspace.yaml")
    try:
        # as compose: the schema first (dagster_init runs to completion), then the services
        init = subprocess.run(
            [str(BIN / "dagster"), *service_command("dagster_init")[1:]],
            env=env["dagster_init"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-3000:]
        topology.start(
            "user_code", with_options(service_command("user_code"), {"-h": "127.0.0.1", "-p": str(ports["user_code"])})
        )
        topology.start(
            "webserver",
            with_options(
                service_command("webserver"), {"-h": "127.0.0.1", "-p": str(ports["webserver"]), "-w": workspace}
            ),
        )
        topology.start("daemon", with_options(service_command("daemon"), {"-w": workspace}))
        topology.start(
            "api", with_options(service_command("api"), {"--host": "127.0.0.1", "--port": str(ports["api"])})
        )
        topology.start(
            "dashboard",
            with_options(service_command("dashboard"), {"--host": "127.0.0.1", "--port": str(ports["dashboard"])}),
        )

        def location_loaded():
            (entry,) = topology.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            location = entry["locationOrLoadError"]  # a load error while the code server starts: it reloads
            return location and location["__typename"] == "RepositoryLocation" and location["repositories"][0]

        repository = topology.wait("the code location over GraphQL", location_loaded, timeout=180)
        assert {"full_pipeline", "retrain", "drift_job"} <= {job["name"] for job in repository["jobs"]}
        assert "drift_sensor" in {sensor["name"] for sensor in repository["sensors"]}

        # 1. the training lifecycle, queued and started by the daemon
        pipeline = launch(topology, "full_pipeline", training)
        wait_for_run(topology, pipeline, timeout=420)
        phases = {"up_and_full_pipeline": time.monotonic() - started}
        champion = home / "production" / "champion"
        assert champion.is_symlink() and champion.resolve().is_dir()
        from fakenews_ml.bundle import read_meta

        version = read_meta(champion)["version"]  # a complete bundle (weights, tokenizer, config, metrics)
        champion_target = champion.resolve()

        # 2. the API picks up the champion and logs drifted traffic into PostgreSQL
        api = f"http://127.0.0.1:{ports['api']}"
        health = topology.wait(
            "the API to serve the champion",
            lambda: (r := topology.session.get(f"{api}/health", timeout=10)).status_code == 200 and r.json(),
            timeout=120,
        )
        assert health["model_version"] == version
        titles = drifted_titles(datasets_dir, TRAFFIC_ROWS)
        for start in range(0, len(titles), 80):
            answer = topology.session.post(f"{api}/predict", json={"titles": titles[start : start + 80]}, timeout=60)
            assert answer.status_code == 200, answer.text[:500]
        assert topology.session.get(f"{api}/health", params={"flush": 10}, timeout=30).json()["log"]["backlog"] == 0
        from fakenews_ml.monitoring.prediction_log import PredictionLog

        with PredictionLog(log_url) as log:  # the same database compose gives the API
            assert log.count() == TRAFFIC_ROWS
            today = datetime.now(UTC).strftime("%Y-%m-%d")
            assert log.daily_counts().to_dict("records") == [{"day": today, "count": TRAFFIC_ROWS}]
        assert topology.session.get(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health", timeout=10).text == "ok"

        # 3. today's drift report fails its check; the daemon's drift_sensor launches retrain by itself
        drift = launch(topology, "drift_job", {}, tags={"dagster/partition": today})
        wait_for_run(topology, drift, timeout=300)
        phases["serve_traffic_and_drift_job"] = time.monotonic() - started - sum(phases.values())
        (node,) = topology.graphql(DRIFT_CHECK)["assetNodes"]
        (check,) = node["assetChecksOrError"]["checks"]
        execution = check["executionForLatestMaterialization"]
        assert execution["status"] == "FAILED" and execution["partition"] == today
        assert execution["evaluation"]["severity"] == "ERROR"

        def retrain_run():
            runs = topology.graphql(RUNS_BY_TAG, key="dagster/sensor_name", value="drift_sensor")["runsOrError"]
            return runs["results"][0] if runs["results"] else None

        retrain = topology.wait("drift_sensor to launch retrain (it ticks every 60 s)", retrain_run, timeout=200)
        tags = {t["key"]: t["value"] for t in retrain["tags"]}
        assert retrain["jobName"] == "retrain" and tags["fakenews/drift_partition"] == today
        assert tags["dagster/run_key"] == f"retrain-after-drift-{today}"
        phases["sensor_launches_retrain"] = time.monotonic() - started - sum(phases.values())
        done = wait_for_run(topology, retrain["runId"], timeout=300)
        phases["retrain_run"] = time.monotonic() - started - sum(phases.values())
        assert done["status"] == "SUCCESS"
        # same data and settings: the retrain reused the bundle, and the gate kept the champion
        assert champion.resolve() == champion_target
    finally:
        topology.stop_all()
    assert all(process.poll() is not None for process in topology.processes.values())
    print("topology phases (s):", {k: round(v) for k, v in phases.items()}, f"total {time.monotonic() - started:.0f}")
