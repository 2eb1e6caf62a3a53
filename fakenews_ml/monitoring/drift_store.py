"""Where drift reports live, one folder per daily partition: ``drift_reports/<YYYY-MM-DD>/`` in the artifact store,
holding ``manifest.json`` (the day's ``DriftReport``: its status is the verdict every view shows, see
``fakenews_ml.monitoring.verdict``) and, for a judged day, ``report.html`` and ``report.json`` (its ``summary`` is
``DriftResult.to_metadata()``). The Dagster ``drift_report`` asset writes here; the dashboard reads it back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fakenews_ml.atomic import write_text
from fakenews_ml.environment import artifact_store
from fakenews_ml.manifests import DriftReport, dump_manifest, load_manifest
from fakenews_ml.monitoring.drift import REPORT_JSON
from fakenews_ml.monitoring.verdict import DriftOverview, overview, status_of, verdict_of

HISTORY_COLUMNS = [
    "partition",
    "status",
    "verdict",
    "retrain",
    "drifted",
    "drift_share",
    "drift_share_threshold",
    "embedding_drift",
    "embedding_threshold",
    "n_current",
    "model_version",
    "model_variant",
    "reason",
]
DRIFT_REPORTS = "drift_reports"
MANIFEST_JSON = "manifest.json"


def drift_reports_root() -> Path:
    root = artifact_store().path(DRIFT_REPORTS)
    root.mkdir(parents=True, exist_ok=True)
    return root


def report_dir(partition: str) -> Path:
    """The folder of one day's report (``partition`` is the Dagster partition key, YYYY-MM-DD)."""
    return drift_reports_root() / partition


def write_verdict(folder: Path, report: DriftReport) -> None:
    """The day's manifest into its (staging) folder: the verdict the dashboard reads."""
    write_text(Path(folder) / MANIFEST_JSON, dump_manifest(report))


def read_summary(partition: str) -> dict | None:
    file = report_dir(partition) / REPORT_JSON
    if not file.exists():
        return None
    return json.loads(file.read_text())["summary"]


def read_verdict(partition: str) -> DriftReport | None:
    """The day's ``DriftReport`` as the asset returned it (None for a folder written before manifests were kept)."""
    file = report_dir(partition) / MANIFEST_JSON
    if not file.exists():
        return None
    manifest = load_manifest(file.read_text())
    return manifest if isinstance(manifest, DriftReport) else None


def _row(partition: str) -> dict | None:
    report, summary = read_verdict(partition), read_summary(partition)
    if report is None and summary is None:
        return None
    summary = summary or {}
    status = status_of(summary.get("drifted"), report.status if report else None)
    verdict = verdict_of(status)
    embedding = summary.get("embedding_drift") or {}
    return {
        "partition": partition,
        "status": status,
        "verdict": verdict.label,
        "retrain": verdict.retrain,
        "drifted": status == "drifted",
        "drift_share": summary.get("drift_share"),
        "drift_share_threshold": summary.get("drift_share_threshold"),
        "embedding_drift": embedding.get("score"),
        "embedding_threshold": embedding.get("threshold"),
        "n_current": summary.get("n_current", report.rows if report else None),
        "model_version": report.reference_model_version if report else summary.get("model_version"),
        "model_variant": report.model_variant if report else None,
        "reason": (report.reason if report else None) or "; ".join(summary.get("reasons") or []),
    }


def drift_history() -> pd.DataFrame:
    """One row per day with a verdict, oldest first: judged days with their scores, days with too little traffic
    with their reason (empty frame with the columns when none)."""
    rows = []
    for folder in sorted(p for p in drift_reports_root().iterdir() if p.is_dir() and not p.name.startswith(".")):
        row = _row(folder.name)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def drift_overview(history: pd.DataFrame) -> DriftOverview:
    """The history summed up by the verdict rules (the latest judged day, the failed days)."""
    return overview(zip(history["partition"], history["status"], strict=True))
