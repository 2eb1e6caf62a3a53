"""Everything the pages read or write, behind Streamlit's caches.

* The served model: ``st.cache_resource`` keyed by the champion's resolved bundle folder and the mtimes of
  its ``bundle.json``/``quantization.json`` (the same fingerprint the API's hot reload uses), so a newly
  promoted champion is picked up on the next page run and the old one is dropped (one entry).
* The prediction log: one ``PredictionLog`` per URL (``st.cache_resource``); the dashboard writes to the
  same log as the API, with ``origin='dashboard'``.
* Log, drift and registry reads: ``st.cache_data`` with short TTLs (seconds): fresh enough to watch a
  simulation, cheap enough for many viewers.

Nothing returned for display holds an absolute path: bundles are named by folder and version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from dashboards import components
from fakenews_ml.bundle import read_json, read_meta
from fakenews_ml.environment import prediction_log_url
from fakenews_ml.errors import BundleError
from fakenews_ml.registry import champion_path, list_bundles, promotion_history

ORIGIN = "dashboard"
FEEDBACK_SOURCE = "dashboard"
MAX_TRAFFIC_ROWS = 200_000  # newest predictions charted at most (a week of busy traffic)
RANGES = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Everything": None,
}


# ----- the served model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedModel:
    predictor: object  # fakenews_ml.predict.Predictor
    version: str  # the champion bundle's version (what the registry and the API log), not its variant's
    variant: str
    folder: str
    threshold: float


def champion_fingerprint() -> tuple[str, int, int | None] | None:
    """(resolved bundle folder, bundle.json mtime, quantization.json mtime), or None without a champion.
    A dangling production link raises BundleError (the page says so)."""
    path = champion_path()
    if path is None:
        return None
    try:
        meta_mtime = (path / "bundle.json").stat().st_mtime_ns
    except OSError:
        raise BundleError(f"the production champion {path.name} is not a complete model bundle") from None
    report = path / "quantization.json"
    return str(path), meta_mtime, report.stat().st_mtime_ns if report.exists() else None


@st.cache_resource(max_entries=1, show_spinner="Loading the production model…")
def _load_model(fingerprint: tuple) -> ServedModel:
    from fakenews_ml.predict import Predictor

    path = Path(fingerprint[0])
    version = read_meta(path)["version"]
    predictor = Predictor.from_path(path, "auto")
    return ServedModel(predictor, version, predictor.bundle.variant, path.name, predictor.bundle.threshold)


def served_model() -> ServedModel | None:
    fingerprint = champion_fingerprint()
    return None if fingerprint is None else _load_model(fingerprint)


def champion_summary() -> dict | None:
    """Version and folder of the champion without loading it (for the sidebar)."""
    path = champion_path()
    if path is None:
        return None
    meta = read_meta(path)
    return {
        "version": meta["version"],
        "folder": path.name,
        "created_at": meta.get("created_at"),
        "threshold": float(meta.get("threshold", 0.5)),
    }


# ----- the prediction log -------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _log(url: str):
    from fakenews_ml.monitoring.prediction_log import PredictionLog

    return PredictionLog(url)


def prediction_log():
    return _log(prediction_log_url())


def log_kind() -> str:
    """What kind of store the log is (never its path or credentials)."""
    scheme = urlsplit(prediction_log_url()).scheme
    return scheme.split("+")[0] or "sqlite"


def classify(model: ServedModel, titles: list[str], progress=None) -> tuple[pd.DataFrame, str | None]:
    """Classify and log ``titles`` (already checked) with origin 'dashboard'. Returns one row per title
    (prob_fake, label, verdict, model_version, request_id, prediction_id) and the log error if the rows
    could not be stored (the verdicts are still shown; feedback then cannot be linked)."""
    from fakenews_ml.predict import predict_all

    result = predict_all(model.predictor, titles, progress)
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    scored = "ood_score" in result.columns  # bundles trained before the domain profile have no score
    ood = result["ood_score"].astype(float).tolist() if scored else [None] * len(titles)
    flags = result["out_of_domain"].astype(bool).tolist() if scored else [None] * len(titles)
    rows = [
        {
            "request_id": request_id,
            "created_at": now,
            "title": t,
            "prob_fake": float(p),
            "label": int(y),
            "model_version": model.version,
            "origin": ORIGIN,
            "ood_score": o,
            "out_of_domain": f,
        }
        for t, p, y, o, f in zip(titles, result["prob_fake"], result["label"], ood, flags)
    ]
    error = None
    try:
        ids = prediction_log().log_predictions(rows)
    except Exception as exc:  # noqa: BLE001 - a log outage must not hide the verdicts
        components.log.exception("could not write predictions to the log")
        ids, error = [None] * len(rows), components.safe_message(exc)
    frame = pd.DataFrame(
        {
            "prob_fake": result["prob_fake"].astype(float).to_numpy(),
            "label": result["label"].astype(int).to_numpy(),
            "verdict": ["fake" if y else "real" for y in result["label"]],
            "model_version": model.version,
            "request_id": request_id,
            "prediction_id": pd.array(ids, dtype="Int64"),
            "ood_score": pd.array(ood, dtype="Float64"),
            "out_of_domain": pd.array(flags, dtype="boolean"),
        }
    )
    traffic.clear()
    return frame, error


def store_feedback(items: list[tuple[int, int]]) -> int:
    """Store (prediction_id, label) pairs as feedback linked to logged predictions; returns how many."""
    ids = prediction_log().add_feedback(
        [{"prediction_id": int(pid), "label": int(label)} for pid, label in items], source=FEEDBACK_SOURCE
    )
    feedback_stats.clear()
    return len(ids)


@st.cache_data(ttl=10, show_spinner=False)
def traffic(range_name: str, url: str) -> tuple[pd.DataFrame, bool]:
    """Logged predictions of the range (no titles: not needed for charts), oldest first, and whether the
    range held more than MAX_TRAFFIC_ROWS (then only the newest are returned)."""
    log = prediction_log()
    span = RANGES[range_name]
    now = datetime.now(UTC)
    start = now - span if span is not None else datetime(1970, 1, 1, tzinfo=UTC)
    count = log.count_since(start)
    truncated = count > MAX_TRAFFIC_ROWS
    frame = log.recent(MAX_TRAFFIC_ROWS) if truncated else log.window(start, now + timedelta(minutes=1))
    frame = frame.drop(columns=["title"]).sort_values(["created_at", "id"]).reset_index(drop=True)
    return frame, truncated


@st.cache_data(ttl=10, show_spinner=False)
def feedback_stats(url: str) -> dict:
    log = prediction_log()
    table = log.feedback_table()
    return {
        "count": len(table),
        "fake": int((table["label"] == 1).sum()) if len(table) else 0,
        "by_source": table["source"].value_counts().to_dict() if len(table) else {},
        "last": table["created_at"].max() if len(table) else None,
    }


@st.cache_data(ttl=10, show_spinner=False)
def live_quality(range_name: str, url: str) -> pd.DataFrame:
    """Accuracy, macro-F1 and confusion of the labelled predictions of the range, per UTC day and model version
    (the numbers the Dagster live_quality asset records per day)."""
    from fakenews_ml.monitoring.live_quality import live_quality as per_day

    span = RANGES[range_name]
    now = datetime.now(UTC)
    start = now - span if span is not None else datetime(1970, 1, 1, tzinfo=UTC)
    return per_day(prediction_log().labelled_predictions(start, now + timedelta(minutes=1)))


# ----- drift --------------------------------------------------------------------------------------------


@st.cache_data(ttl=15, show_spinner=False)
def drift_table(home: str) -> pd.DataFrame:
    from fakenews_ml.monitoring.drift_store import (
        HISTORY_COLUMNS,
        drift_history,
        drift_reports_root,
    )

    if not drift_reports_root().is_dir():  # no report was ever written
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    return drift_history()


def drift_verdicts(history: pd.DataFrame):
    """The history summed up by the verdict rules every view shares (``fakenews_ml.monitoring.verdict``)."""
    from fakenews_ml.monitoring.drift_store import drift_overview

    return drift_overview(history)


def is_partition_key(day: str) -> bool:
    """Whether ``day`` is a daily partition key (YYYY-MM-DD): the only thing a URL may name as a report."""
    try:
        return datetime.strptime(day, "%Y-%m-%d").strftime("%Y-%m-%d") == day
    except ValueError:
        return False


@st.cache_data(ttl=15, show_spinner=False)
def drift_summary(home: str, partition: str) -> dict | None:
    from fakenews_ml.monitoring.drift_store import read_summary

    summary = read_summary(partition)
    if summary is None:
        return None
    return summary


def drift_report_html(partition: str) -> str | None:
    from fakenews_ml.monitoring.drift import REPORT_HTML
    from fakenews_ml.monitoring.drift_store import report_dir

    file = report_dir(partition) / REPORT_HTML
    if not file.is_file():
        return None
    return _read_text(str(file), file.stat().st_mtime_ns)


@st.cache_data(max_entries=4, show_spinner="Loading the drift report…")
def _read_text(path: str, mtime_ns: int) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


# ----- the registry -------------------------------------------------------------------------------------


def source_label(uri: str) -> str:
    """A source URI as a name to show: the file name and where it lives, never a local folder or a query
    string (signed URLs carry credentials there)."""
    parts = urlsplit(str(uri))
    name = Path(parts.path).name or parts.netloc or str(uri)
    if parts.scheme in ("http", "https"):
        return f"{name} ({parts.hostname})"
    if parts.scheme == "gs":
        return f"{name} (gs://{parts.netloc})"
    if parts.scheme and parts.scheme != "file" and len(parts.scheme) > 1:
        return f"{name} ({parts.scheme})"
    return name


def encoder_name(encoder: str | None) -> str:
    """A hub id as is; a local encoder folder by its name only."""
    if not encoder:
        return "packaged all-MiniLM-L6-v2"
    if encoder.startswith(("/", "~", ".")) or "\\" in encoder or Path(encoder).expanduser().exists():
        return f"{Path(encoder).name} (local folder)"
    return encoder


def _sources(lineage: dict) -> list[str]:
    found = []
    for item in lineage.get("sources") or []:
        uri = item.get("uri") if isinstance(item, dict) else item
        if uri:
            found.append(source_label(uri))
    return found


def _wandb_url(*documents: dict) -> str | None:
    """The W&B run URL recorded in a bundle's lineage or training report, if any (online runs only)."""
    for document in documents:
        for key in ("wandb", "wandb_run"):
            run = document.get(key)
            url = run.get("url") if isinstance(run, dict) else None
            if isinstance(url, str) and url.startswith("https://"):
                return url
        url = document.get("wandb_url")
        if isinstance(url, str) and url.startswith("https://"):
            return url
    return None


def _quantization(path: Path) -> list[dict]:
    report = read_json(path, "quantization")
    if not report:
        return []
    recommended = report.get("recommended", "fp32")
    rows = []
    for variant, info in report.items():
        if not isinstance(info, dict) or "size_bytes" not in info:
            continue
        rows.append(
            {
                "variant": variant,
                "recommended": variant == recommended,
                "size_bytes": info.get("size_bytes"),
                "size_ratio": info.get("size_ratio", 1.0),
                "rows_per_second": info.get("rows_per_second"),
                "speedup_vs_fp32": info.get("speedup_vs_fp32", 1.0),
                "accuracy_delta": info.get("accuracy_delta", 0.0 if variant == "fp32" else None),
                "agreement": info.get("agreement", 1.0 if variant == "fp32" else None),
                "passed": info.get("passed", True),
            }
        )
    return rows


def _bundle_record(path: Path, meta: dict, champion: bool) -> dict:
    metrics = read_json(path, "metrics")
    lineage = read_json(path, "lineage")
    training = read_json(path, "training")
    return {
        "folder": path.name,
        "version": meta["version"],
        "created_at": pd.Timestamp(meta["created_at"]),
        "variant": meta.get("variant", "fp32"),
        "champion": champion,
        "threshold": float(meta.get("threshold", 0.5)),
        "size_bytes": meta.get("size_bytes"),
        "encoder": encoder_name(lineage.get("encoder") or (meta.get("model_config") or {}).get("encoder")),
        "max_length": (meta.get("model_config") or {}).get("max_length"),
        "sources": _sources(lineage),
        "feedback_rows": int((lineage.get("feedback") or {}).get("rows") or 0),
        "parent": (lineage.get("parent") or {}).get("version"),
        "split_rows": {
            name: info.get("rows") for name, info in (lineage.get("splits") or {}).items() if isinstance(info, dict)
        },
        "code_version": lineage.get("code_version"),
        "test": metrics.get("test") or {},
        "val": metrics.get("val") or {},
        "quantization": _quantization(path),
        "history": training.get("history") or [],
        "training": {
            k: training.get(k)
            for k in ("precision", "steps", "fit_seconds", "samples_per_second")
            if training.get(k) is not None
        },
        "device": (training.get("device") or {}).get("name") or (training.get("device") or {}).get("type"),
        "wandb_url": _wandb_url(lineage, training, metrics),
        "plots": sorted(p.stem for p in (path / "plots").glob("*.png")),
    }


@st.cache_data(ttl=15, show_spinner=False)
def registry(home: str) -> list[dict]:
    """Every bundle of the registry (and the champion, wherever it lives), newest first."""
    bundles = list_bundles()
    champion = champion_path()
    records = [_bundle_record(b["path"], b["meta"], b["champion"]) for b in bundles]
    if champion is not None and not any(b["champion"] for b in bundles):
        records.insert(0, _bundle_record(champion, read_meta(champion), True))
    return records


def bundle_folder(folder: str) -> Path | None:
    """The on-disk folder of a listed bundle (for reading its plots); never shown."""
    from fakenews_ml.environment import artifact_store
    from fakenews_ml.registry import MODELS

    champion = champion_path()
    if champion is not None and champion.name == folder:
        return champion
    path = artifact_store().path(MODELS) / folder
    return path if path.is_dir() else None


def plot_bytes(folder: str, name: str) -> bytes | None:
    path = bundle_folder(folder)
    file = path / "plots" / f"{name}.png" if path else None
    return file.read_bytes() if file is not None and file.is_file() else None


@st.cache_data(ttl=15, show_spinner=False)
def promotions(home: str) -> pd.DataFrame:
    rows = [
        {
            "promoted at": pd.Timestamp(r.get("at")),
            "version": r.get("version"),
            "bundle": Path(str(r.get("location") or r.get("path") or "")).name,
            "replaced": Path(r["previous"]).name if r.get("previous") else "—",
            "reason": r.get("reason") or "",
        }
        for r in promotion_history()
    ]
    return (
        pd.DataFrame(rows, columns=["promoted at", "version", "bundle", "replaced", "reason"])
        .iloc[::-1]
        .reset_index(drop=True)
    )


def home_key() -> str:
    """Cache key part: FAKENEWS_HOME (so a test or a second home never reads another's cached data)."""
    from fakenews_ml.environment import fakenews_home

    return str(fakenews_home())


def log_key() -> str:
    return prediction_log_url()
