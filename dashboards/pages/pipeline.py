"""Pipeline: what Dagster is doing, read from its webserver's GraphQL API, and a button to retrain.

When no webserver answers, the page says so and stops; the other pages never depend on Dagster.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import components
from dashboards.dagster_client import FAILED, URL_ENV, CheckRow, DagsterClient, Overview
from dashboards.launch_panel import launch_section
from dashboards.run_names import job_label
from fakenews_ml.monitoring.verdict import STATUSES, verdict_of
from fakenews_ml.monitoring.verdict import overview as drift_overview

DRIFT_CHECK = ("drift_report", "drift_within_thresholds")  # the check whose verdict per day is shown

# plain symbols that every font has (the page is also screenshotted by a browser without emoji fonts)
STATUS_ICONS = {
    "SUCCESS": "✓",
    "SUCCEEDED": "✓",
    "FAILURE": "✗",
    "FAILED": "✗",
    "EXECUTION_FAILED": "✗",
    "STARTED": "▶",
    "STARTING": "▶",
    "QUEUED": "…",
    "NOT_STARTED": "…",
    "CANCELING": "■",
    "CANCELED": "■",
    "IN_PROGRESS": "▶",
    "SKIPPED": "–",
    "NOT_RUN": "·",
    "RUNNING": "●",
    "STOPPED": "○",
}


def badge(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '•')} {status.lower().replace('_', ' ')}"


@st.cache_data(ttl=5, show_spinner="Asking Dagster…")
def overview(url: str) -> Overview:
    return DagsterClient(url).overview()


# A run id column holds the run's URL in the Dagster UI and shows its first 8 characters, as Dagster does.
RUN_LINK = st.column_config.LinkColumn("run", display_text=r"/runs/(.{8})", help="opens the run in the Dagster UI")
# medium text columns: with the rest of a table they fit the page; the full text shows on hover
TEXT = st.column_config.TextColumn(width="medium")


def runs_table(runs, client: DagsterClient) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "status": badge(r.status),
                "job": job_label(r.job, r.assets),
                "run": client.run_url(r.run_id),
                "created": components.ago(r.created),
                "started": components.fmt_time(r.started),
                "ended": components.fmt_time(r.ended),
            }
            for r in runs
        ],
        columns=["status", "job", "run", "created", "started", "ended"],
    )


def check_status(check: CheckRow) -> str:
    if not check.partitioned:
        return badge(check.status)
    if not check.partitions:
        return badge("NOT_RUN")
    failed = len(check.failed_partitions)
    if failed:
        return f"{STATUS_ICONS['FAILED']} failed on {failed} of {len(check.partitions)} partition(s)"
    return f"{STATUS_ICONS['SUCCEEDED']} passed on {len(check.partitions)} partition(s)"


def drift_section(info: Overview) -> None:
    """The drift check's verdict per day, read from Dagster (the same rules and words as the Monitoring page)."""
    check = info.check(*DRIFT_CHECK)
    if check is None or not check.partitions:
        return
    st.subheader("Drift verdict")
    days = [p for p in check.partitions if p.metadata.get("status") in STATUSES]
    verdicts = drift_overview((p.partition, p.metadata["status"]) for p in days)
    latest = next((p for p in days if p.partition == verdicts.latest_day), None)
    components.verdict_banner(verdicts, (latest.description or "") if latest else "")
    rows = []
    for p in check.partitions:
        status = p.metadata.get("status")
        retrain = info.retrains.get(p.partition)
        rows.append(
            {
                "day": p.partition,
                "verdict": verdict_of(status).label if status in STATUSES else badge(p.status),
                "check": badge(p.status) + (f" ({p.severity.lower()})" if p.status in FAILED and p.severity else ""),
                "retrain": ("requested" if p.metadata.get("retrain") else "—")
                + (f": run {retrain.run_id[:8]} {badge(retrain.status)}" if retrain else ""),
                "checked": components.ago(p.at),
                "details": p.description or "",
            }
        )
    st.dataframe(
        pd.DataFrame(rows, columns=["day", "verdict", "check", "retrain", "checked", "details"]),
        hide_index=True,
        width="stretch",
    )


def show_runs(runs, client: DagsterClient) -> None:
    st.dataframe(
        runs_table(runs, client), hide_index=True, width="stretch", column_config={"run": RUN_LINK, "job": TEXT}
    )


def main() -> None:
    st.title("Pipeline")
    client = DagsterClient()
    top = st.columns([4, 1])
    if top[1].button("Refresh", key="refresh_dagster", icon=":material/refresh:"):
        overview.clear()
    info = overview(client.url)
    top[0].caption(f"Dagster webserver: {components.md_escape(info.url)} (set {URL_ENV} to change)")
    if not info.reachable:
        st.warning(
            f"**Dagster is not reachable.** {components.md_escape(info.error)}. Start it with `dagster dev` "
            f"(or point {URL_ENV} at a running webserver). Predict, Monitoring and Models keep working without it.",
            icon=":material/power_off:",
        )
        return
    if info.error:
        components.show_error(info.error)
        return
    for warning in info.warnings:
        st.caption(f":material/warning: {components.md_escape(warning)}")

    running = sum(r.status in ("STARTED", "STARTING", "CANCELING") for r in info.active_runs)
    queued = len(info.active_runs) - running
    a, b, c, d = st.columns(4)
    a.metric("Dagster", info.version or "?", help=", ".join(f"{loc} / {repo}" for loc, repo in info.locations))
    b.metric("Running / queued runs", f"{running} / {queued}")
    c.metric(
        "Failed checks",
        info.failed_checks,
        help="Each failed partition of a partitioned check counts (as in Dagster's check list).",
    )
    d.metric("Sensors running", sum(i.kind == "sensor" and i.status == "RUNNING" for i in info.instigators))

    drift_section(info)
    launch_section(client, info, on_launch=overview.clear)

    st.subheader("Runs")
    if info.active_runs:
        st.markdown("**Running and queued**")
        show_runs(info.active_runs, client)
    else:
        st.caption("Nothing running or queued.")
    if info.recent_runs:
        st.markdown("**Latest runs**")
        show_runs(info.recent_runs, client)

    st.subheader("Assets and checks")
    assets = pd.DataFrame(
        [
            {
                "asset": a.key,
                "group": a.group,
                "last materialized": components.ago(a.last_materialized),
                "partition": a.last_partition or ("—" if not a.partitioned else ""),
                "run": client.run_url(a.last_run_id) if a.last_run_id else None,
            }
            for a in sorted(info.assets, key=lambda a: (a.group, a.key))
        ],
        columns=["asset", "group", "last materialized", "partition", "run"],
    )
    checks = pd.DataFrame(
        [
            {
                "check": f"{c.asset} · {c.name}",
                "status": check_status(c),
                "blocking": c.blocking,
                "when": components.ago(c.at) if c.at else "—",
                "partition": ", ".join(c.failed_partitions[:5]) if c.partitioned else (c.partition or ""),
                "details": c.description or "",
            }
            for c in info.checks
        ],
        columns=["check", "status", "blocking", "when", "partition", "details"],
    )
    # one above the other, full width: side by side they cut their columns off
    st.markdown("**Latest materializations**")
    st.dataframe(assets, hide_index=True, width="stretch", column_config={"run": RUN_LINK})
    st.markdown("**Asset checks** (partitioned checks: the latest result of every partition)")
    st.dataframe(checks, hide_index=True, width="stretch", column_config={"details": TEXT})

    st.subheader("Sensors and schedules")
    if not info.instigators:
        st.caption("No sensors or schedules in the workspace.")
    rows = []
    for inst in info.instigators:
        last = inst.ticks[0] if inst.ticks else None
        rows.append(
            {
                "name": inst.name,
                "status": badge(inst.status),
                "how": inst.detail,  # "standard sensor, every 60 s" / "cron 15 0 * * *"
                "last tick": components.ago(last.at) if last else "no ticks yet",
                "result": badge(last.status) if last else "",
                "runs": sum(len(t.run_ids) for t in inst.ticks),
                "note": (last.error or last.skip_reason or "") if last else "",
            }
        )
    if rows:
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            column_config={"runs": st.column_config.NumberColumn(help="runs requested by the last ticks")},
        )


components.guard(main)
