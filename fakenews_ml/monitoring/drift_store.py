"""Where drift reports live, one folder per daily partition: ``drift_reports/<YYYY-MM-DD>/`` in the artifact store,
holding ``report.html`` and ``report.json`` (its ``summary`` is ``DriftResult.to_metadata()``). The Dagster
``drift_report`` asset writes here; the dashboard and the sensor read the history back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fakenews_ml.environment import artifact_store
from fakenews_ml.monitoring.drift import REPORT_JSON

HISTORY_COLUMNS = [
    "partition",
    "drifted",
    "drift_share",
    "drift_share_threshold",
    "embedding_drift",
    "embedding_threshold",
    "n_current",
    "model_version",
]
DRIFT_REPORTS = "drift_reports"


def drift_reports_root() -> Path:
    root = artifact_store().path(DRIFT_REPORTS)
    root.mkdir(parents=True, exist_ok=True)
    return root


def report_dir(partition: str) -> Path:
    """The folder of one day's report (``partition`` is the Dagster partition key, YYYY-MM-DD)."""
    return drift_reports_root() / partition


def read_summary(partition: str) -> dict | None:
    file = report_dir(partition) / REPORT_JSON
    if not file.exists():
        return None
    return json.loads(file.read_text())["summary"]


def drift_history() -> pd.DataFrame:
    """One row per day that has a report, oldest first (empty frame with the columns when none)."""
    rows = []
    for folder in sorted(p for p in drift_reports_root().iterdir() if p.is_dir() and not p.name.startswith(".")):
        summary = read_summary(folder.name)
        if summary is None:
            continue
        embedding = summary.get("embedding_drift") or {}
        rows.append(
            {
                "partition": folder.name,
                "drifted": bool(summary["drifted"]),
                "drift_share": summary["drift_share"],
                "drift_share_threshold": summary["drift_share_threshold"],
                "embedding_drift": embedding.get("score"),
                "embedding_threshold": embedding.get("threshold"),
                "n_current": summary["n_current"],
                "model_version": summary.get("model_version"),
            }
        )
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)
