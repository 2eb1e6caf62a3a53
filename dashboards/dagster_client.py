"""A small client for the Dagster webserver's GraphQL API (what the Pipeline page shows and launches).

Every call returns a result object instead of raising: when the webserver is down, slow or answers with
an error, the page says so plainly and the rest of the dashboard keeps working. Timeouts are short, so a
dead webserver costs the page at most a few seconds.

The queries are validated against Dagster's own schema in the tests (``dagster_graphql.schema``), so a
field renamed in a Dagster upgrade fails a test rather than the page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import requests

URL_ENV = "DAGSTER_WEBSERVER_URL"
# Where a browser opens the Dagster UI, when that differs from where this server reaches its API (compose
# and Kubernetes: http://webserver:3000 inside, a public address outside). Default: the same URL.
UI_URL_ENV = "DAGSTER_UI_URL"
DEFAULT_URL = "http://127.0.0.1:3000"
RETRAIN_JOB_ENV = "FAKENEWS_RETRAIN_JOB"
# The job launched when FAKENEWS_RETRAIN_JOB is not set: this project's retrain job (fakenews_assets.jobs).
DEFAULT_RETRAIN_JOBS = ("retrain",)
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 10.0
DRIFT_PARTITION_TAG = "fakenews/drift_partition"  # set by the drift sensor on the retrain runs it requests
ACTIVE_RUN_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]

OVERVIEW_QUERY = """
query DashboardOverview($activeStatuses: [RunStatus!], $recentRuns: Int!, $ticks: Int!) {
  version
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        jobs { name isAssetJob description }
        sensors {
          name
          minIntervalSeconds
          sensorType
          sensorState {
            status
            ticks(limit: $ticks) { tickId status timestamp runIds skipReason error { message } }
          }
        }
        schedules {
          name
          cronSchedule
          scheduleState {
            status
            ticks(limit: $ticks) { tickId status timestamp runIds skipReason error { message } }
          }
        }
        assetNodes {
          assetKey { path }
          groupName
          isPartitioned
          isObservable
          assetMaterializations(limit: 1) { runId timestamp partition }
          assetChecksOrError {
            __typename
            ... on AssetChecks {
              checks {
                name
                blocking
                executionForLatestMaterialization {
                  status
                  timestamp
                  runId
                  partition
                  evaluation { success description }
                }
              }
            }
          }
        }
      }
    }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message }
  }
  active: runsOrError(filter: {statuses: $activeStatuses}, limit: 50) {
    __typename
    ... on Runs { results { runId jobName status creationTime startTime assetSelection { path } } }
    ... on PythonError { message }
    ... on InvalidPipelineRunsFilterError { message }
  }
  recent: runsOrError(limit: $recentRuns) {
    __typename
    ... on Runs { results { runId jobName status creationTime startTime endTime assetSelection { path } } }
    ... on PythonError { message }
    ... on InvalidPipelineRunsFilterError { message }
  }
  retrains: runsOrError(filter: {tags: [{key: "fakenews/trigger", value: "drift"}]}, limit: 50) {
    __typename
    ... on Runs { results { runId jobName status creationTime startTime endTime tags { key value } } }
    ... on PythonError { message }
    ... on InvalidPipelineRunsFilterError { message }
  }
}
"""

# Every execution of one check, newest first: the latest per partition is that day's verdict (what Dagster's
# check list shows per partition; executionForLatestMaterialization only covers the newest materialization).
CHECK_EXECUTIONS_QUERY = """
query CheckExecutions($assetKey: AssetKeyInput!, $checkName: String!, $limit: Int!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: $limit) {
    runId
    status
    timestamp
    partition
    evaluation {
      success
      severity
      description
      metadataEntries { label ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue } }
    }
  }
}
"""
PARTITION_EXECUTIONS = 500  # check executions read per partitioned check (the newest; one per day and rerun)
FAILED = ("FAILED", "EXECUTION_FAILED")
JOB_ASSETS_QUERY = """
query JobAssets($selector: PipelineSelector!) {
  assetNodes(pipeline: $selector) { assetKey { path } }
}
"""

LAUNCH_MUTATION = """
mutation LaunchRetrain($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status jobName } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""


def webserver_url() -> str:
    return (os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def display_url(url: str) -> str:
    """The URL without user or password: safe to show on a page."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class Tick:
    status: str
    at: datetime | None
    run_ids: list[str]
    skip_reason: str | None
    error: str | None


@dataclass
class Instigator:
    """A sensor or a schedule and its latest ticks."""

    kind: str  # "sensor" or "schedule"
    name: str
    status: str  # RUNNING / STOPPED
    detail: str  # sensor type and interval, or the cron schedule
    ticks: list[Tick] = field(default_factory=list)


@dataclass
class AssetRow:
    key: str
    group: str
    partitioned: bool
    last_materialized: datetime | None
    last_run_id: str | None
    last_partition: str | None


@dataclass
class CheckRow:
    asset: str
    name: str
    blocking: bool
    status: str  # SUCCEEDED / FAILED / IN_PROGRESS / EXECUTION_FAILED / SKIPPED / NOT_RUN
    at: datetime | None
    run_id: str | None
    partition: str | None
    description: str | None
    partitioned: bool = False
    partitions: list[PartitionCheck] = field(default_factory=list)  # newest day first (partitioned checks)

    @property
    def failed_partitions(self) -> list[str]:
        return [p.partition for p in self.partitions if p.status in FAILED]

    @property
    def failures(self) -> int:
        """Failed partitions of a partitioned check (as Dagster's check list counts them), else 0 or 1."""
        return len(self.failed_partitions) if self.partitioned else int(self.status in FAILED)


@dataclass
class PartitionCheck:
    """The latest execution of a partitioned check for one partition."""

    partition: str
    status: str
    severity: str | None
    at: datetime | None
    run_id: str | None
    description: str | None
    metadata: dict = field(default_factory=dict)  # text and bool entries of the evaluation


@dataclass
class RunRow:
    run_id: str
    job: str
    status: str
    created: datetime | None
    started: datetime | None
    ended: datetime | None = None
    drift_partition: str | None = None  # the drift day a retrain run answers (its fakenews/drift_partition tag)
    assets: tuple[str, ...] = ()  # the run's asset selection (what an ad-hoc materialization ran)


@dataclass
class Overview:
    """What the Pipeline page shows; ``error`` is set (and the rest empty) when Dagster could not be asked."""

    url: str
    reachable: bool
    error: str | None = None
    version: str | None = None
    locations: list[tuple[str, str]] = field(default_factory=list)  # (code location, repository)
    jobs: list[tuple[str, str, str]] = field(default_factory=list)  # (location, repository, job)
    assets: list[AssetRow] = field(default_factory=list)
    checks: list[CheckRow] = field(default_factory=list)
    instigators: list[Instigator] = field(default_factory=list)
    active_runs: list[RunRow] = field(default_factory=list)
    recent_runs: list[RunRow] = field(default_factory=list)
    retrains: dict[str, RunRow] = field(default_factory=dict)  # drift day -> the newest retrain run it asked for
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and self.error is None

    @property
    def failed_checks(self) -> int:
        """Failed checks, each failed partition of a partitioned check counted (what the check list shows)."""
        return sum(c.failures for c in self.checks)

    def check(self, asset: str, name: str) -> CheckRow | None:
        return next((c for c in self.checks if c.asset == asset and c.name == name), None)


@dataclass
class LaunchResult:
    ok: bool
    message: str
    run_id: str | None = None
    job: str | None = None
    run_url: str | None = None


class DagsterError(Exception):
    """A failed GraphQL exchange; ``reachable`` says whether the webserver answered at all."""

    def __init__(self, message: str, reachable: bool):
        super().__init__(message)
        self.reachable = reachable


class DagsterClient:
    def __init__(self, url: str | None = None, timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)):
        self.url = (url or webserver_url()).rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # a proxy from the environment must not relay calls to a local server

    @property
    def shown_url(self) -> str:
        return display_url(self.url)

    def _post(self, query: str, variables: dict | None = None) -> dict:
        try:
            response = self._session.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=self.timeout
            )
        except requests.exceptions.Timeout:
            raise DagsterError(
                f"the Dagster webserver at {self.shown_url} did not answer within {self.timeout[1]:.0f} s", True
            ) from None
        except requests.exceptions.RequestException as exc:
            reason = type(exc).__name__
            if isinstance(exc, requests.exceptions.ConnectionError):
                reason = "connection refused or host unreachable"
            raise DagsterError(
                f"the Dagster webserver at {self.shown_url} is not reachable ({reason})", False
            ) from None
        if response.status_code != 200:
            raise DagsterError(f"the Dagster webserver at {self.shown_url} answered HTTP {response.status_code}", True)
        try:
            body = response.json()
        except ValueError:
            raise DagsterError(
                f"{self.shown_url}/graphql did not answer with JSON: is this a Dagster webserver?", True
            ) from None
        if not isinstance(body, dict):
            raise DagsterError(f"{self.shown_url}/graphql answered with unexpected JSON", True)
        if body.get("errors"):
            first = body["errors"][0]
            message = first.get("message", str(first)) if isinstance(first, dict) else str(first)
            raise DagsterError(f"Dagster GraphQL error: {message}", True)
        return body.get("data") or {}

    # ----- reading ----------------------------------------------------------------------------------

    def overview(self, recent_runs: int = 10, ticks: int = 5) -> Overview:
        try:
            data = self._post(
                OVERVIEW_QUERY, {"activeStatuses": ACTIVE_RUN_STATUSES, "recentRuns": recent_runs, "ticks": ticks}
            )
        except DagsterError as exc:
            return Overview(url=self.shown_url, reachable=exc.reachable, error=str(exc))
        try:
            overview = _parse_overview(self.shown_url, data)
            for check in overview.checks:
                if check.partitioned:
                    check.partitions = self.partition_checks(check.asset, check.name)
        except DagsterError as exc:
            overview.warnings.append(str(exc))
        except (KeyError, TypeError, ValueError) as exc:  # a schema this client does not know
            return Overview(
                url=self.shown_url,
                reachable=True,
                error=f"unexpected answer from Dagster ({type(exc).__name__}: {exc})",
            )
        return overview

    def partition_checks(self, asset: str, check: str, limit: int = PARTITION_EXECUTIONS) -> list[PartitionCheck]:
        """The latest execution of ``check`` per partition, newest partition first."""
        data = self._post(
            CHECK_EXECUTIONS_QUERY, {"assetKey": {"path": asset.split("/")}, "checkName": check, "limit": limit}
        )
        return _latest_per_partition(data["assetCheckExecutions"])

    # ----- launching --------------------------------------------------------------------------------

    def find_job(self, overview: Overview, job_name: str | None = None) -> tuple[str, str, str] | None:
        """(location, repository, job) of the retrain job: ``job_name``, else $FAKENEWS_RETRAIN_JOB, else the
        first of DEFAULT_RETRAIN_JOBS that the workspace has. Looked up, never hard-coded."""
        wanted = (
            [job_name]
            if job_name
            else ([os.environ[RETRAIN_JOB_ENV]] if os.environ.get(RETRAIN_JOB_ENV) else list(DEFAULT_RETRAIN_JOBS))
        )
        for name in wanted:
            for location, repository, job in overview.jobs:
                if job == name:
                    return location, repository, job
        return None

    @property
    def ui_url(self) -> str:
        return display_url((os.environ.get(UI_URL_ENV) or self.url).rstrip("/"))

    def run_url(self, run_id: str) -> str:
        """The run's page in the Dagster UI, at the address a browser uses."""
        return f"{self.ui_url}/runs/{run_id}"

    def job_assets(self, location: str, repository: str, job: str) -> list[str]:
        """The assets ``job`` materializes (raises DagsterError when Dagster cannot say)."""
        selector = {"repositoryLocationName": location, "repositoryName": repository, "pipelineName": job}
        data = self._post(JOB_ASSETS_QUERY, {"selector": selector})
        return [_key(node["assetKey"]) for node in data.get("assetNodes") or []]

    def launch_job(self, location: str, repository: str, job: str, run_config: dict | None = None) -> LaunchResult:
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": job},
            "runConfigData": run_config or {},
        }
        try:
            data = self._post(LAUNCH_MUTATION, {"executionParams": params})
        except DagsterError as exc:
            return LaunchResult(False, str(exc), job=job)
        result = data.get("launchRun") or {}
        kind = result.get("__typename")
        if kind == "LaunchRunSuccess":
            run_id = result["run"]["runId"]
            return LaunchResult(
                True,
                f"launched {job} (run {run_id[:8]})",
                run_id=run_id,
                job=job,
                run_url=self.run_url(run_id),
            )
        if kind == "RunConfigValidationInvalid":
            problems = "; ".join(e.get("message", "") for e in result.get("errors", []))
            return LaunchResult(False, f"Dagster refused the run configuration of {job}: {problems}", job=job)
        return LaunchResult(
            False, f"Dagster did not launch {job}: {kind}: {result.get('message', 'no message')}", job=job
        )

    def launch_retrain(self, overview: Overview | None = None) -> LaunchResult:
        overview = overview or self.overview(recent_runs=1, ticks=1)
        if not overview.ok:
            return LaunchResult(False, overview.error or "Dagster is not reachable")
        found = self.find_job(overview)
        if found is None:
            names = os.environ.get(RETRAIN_JOB_ENV) or " or ".join(DEFAULT_RETRAIN_JOBS)
            known = ", ".join(sorted({j for _, _, j in overview.jobs})) or "none"
            return LaunchResult(
                False, f"no job named {names} in the Dagster workspace (jobs: {known}); set {RETRAIN_JOB_ENV}"
            )
        return self.launch_job(*found)


def _ts(value) -> datetime | None:
    """Dagster timestamps: float seconds (runs, ticks, checks) or a string of milliseconds (events)."""
    if value in (None, ""):
        return None
    number = float(value)
    if number > 1e11:  # milliseconds
        number /= 1000.0
    return datetime.fromtimestamp(number, tz=UTC)


def _key(asset_key: dict) -> str:
    return "/".join(asset_key["path"])


def _ticks(state: dict) -> list[Tick]:
    return [
        Tick(
            t["status"],
            _ts(t.get("timestamp")),
            list(t.get("runIds") or []),
            t.get("skipReason"),
            (t.get("error") or {}).get("message"),
        )
        for t in state.get("ticks") or []
    ]


def _runs(block: dict, where: str, warnings: list[str]) -> list[RunRow]:
    if block.get("__typename") != "Runs":
        warnings.append(f"{where}: {block.get('message', block.get('__typename'))}")
        return []
    return [
        RunRow(
            r["runId"],
            r["jobName"],
            r["status"],
            _ts(r.get("creationTime")),
            _ts(r.get("startTime")),
            _ts(r.get("endTime")),
            next((t["value"] for t in r.get("tags") or [] if t["key"] == DRIFT_PARTITION_TAG), None),
            tuple(_key(k) for k in r.get("assetSelection") or []),
        )
        for r in block["results"]
    ]


def _parse_overview(url: str, data: dict) -> Overview:
    overview = Overview(url=url, reachable=True, version=data.get("version"))
    repos = data["repositoriesOrError"]
    if repos.get("__typename") != "RepositoryConnection":
        overview.error = f"Dagster could not list its code locations: {repos.get('message', repos.get('__typename'))}"
        return overview
    for repo in repos["nodes"]:
        location, name = repo["location"]["name"], repo["name"]
        overview.locations.append((location, name))
        overview.jobs += [(location, name, job["name"]) for job in repo["jobs"] if not job["name"].startswith("__")]
        for sensor in repo["sensors"]:
            state = sensor["sensorState"]
            detail = f"{sensor['sensorType'].lower()} sensor, every {sensor['minIntervalSeconds']} s"
            overview.instigators.append(Instigator("sensor", sensor["name"], state["status"], detail, _ticks(state)))
        for schedule in repo["schedules"]:
            state = schedule["scheduleState"]
            overview.instigators.append(
                Instigator(
                    "schedule", schedule["name"], state["status"], f"cron {schedule['cronSchedule']}", _ticks(state)
                )
            )
        for node in repo["assetNodes"]:
            key = _key(node["assetKey"])
            latest = (node.get("assetMaterializations") or [None])[0]
            overview.assets.append(
                AssetRow(
                    key,
                    node.get("groupName") or "",
                    bool(node.get("isPartitioned")),
                    _ts(latest["timestamp"]) if latest else None,
                    latest["runId"] if latest else None,
                    latest.get("partition") if latest else None,
                )
            )
            checks = node.get("assetChecksOrError") or {}
            if checks.get("__typename") != "AssetChecks":
                if checks:
                    overview.warnings.append(f"checks of {key}: {checks.get('__typename')}")
                continue
            for check in checks["checks"]:
                execution = check.get("executionForLatestMaterialization") or {}
                partitioned = bool(node.get("isPartitioned"))
                evaluation = execution.get("evaluation") or {}
                overview.checks.append(
                    CheckRow(
                        key,
                        check["name"],
                        bool(check.get("blocking")),
                        execution.get("status") or "NOT_RUN",
                        _ts(execution.get("timestamp")),
                        execution.get("runId"),
                        execution.get("partition"),
                        evaluation.get("description"),
                        partitioned,
                    )
                )
    overview.active_runs = _runs(data["active"], "running and queued runs", overview.warnings)
    overview.recent_runs = _runs(data["recent"], "recent runs", overview.warnings)
    for run in reversed(_runs(data["retrains"], "retrain runs", overview.warnings)):  # oldest first: newest wins
        if run.drift_partition:
            overview.retrains[run.drift_partition] = run
    return overview


def _metadata(entries: list[dict] | None) -> dict:
    found = {}
    for entry in entries or []:
        if "text" in entry:
            found[entry["label"]] = entry["text"]
        elif "boolValue" in entry:
            found[entry["label"]] = entry["boolValue"]
    return found


def _latest_per_partition(executions: list[dict]) -> list[PartitionCheck]:
    latest: dict[str, PartitionCheck] = {}
    for execution in sorted(executions, key=lambda e: float(e.get("timestamp") or 0), reverse=True):
        partition = execution.get("partition")
        if not partition or partition in latest:
            continue
        evaluation = execution.get("evaluation") or {}
        latest[partition] = PartitionCheck(
            partition,
            execution["status"],
            evaluation.get("severity"),
            _ts(execution.get("timestamp")),
            execution.get("runId"),
            evaluation.get("description"),
            _metadata(evaluation.get("metadataEntries")),
        )
    return [latest[p] for p in sorted(latest, reverse=True)]
