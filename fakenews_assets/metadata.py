"""Turning manifests into Dagster metadata the UI renders well: Markdown tables, inline plots, JSON."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

SAMPLE_ROWS = 5
CELL_CHARS = 90
METRIC_KEYS = (
    "accuracy",
    "macro_f1",
    "f1_fake",
    "precision_fake",
    "recall_fake",
    "roc_auc",
    "pr_auc",
    "ece",
    "brier",
    "n",
    "threshold",
)


def _cell(value) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def sample_table(
    frame: pd.DataFrame, columns=("title", "label", "source"), rows: int = SAMPLE_ROWS
) -> dg.MetadataValue:
    """The first rows as a Markdown table (long titles shortened)."""
    shown = frame[[c for c in columns if c in frame.columns]].head(rows)
    return dg.MetadataValue.md(shown.map(_cell).to_markdown(index=False) if len(shown) else "_no rows_")


def class_balance(counts: dict[str, int]) -> dict:
    total = sum(counts.values()) or 1
    return {
        "class_balance": dg.MetadataValue.json(counts),
        "fake_share": dg.MetadataValue.float(round(counts.get("fake", 0) / total, 4)),
    }


def frame_metadata(manifest: dict) -> dict:
    """Row count, class balance, data fingerprint and file of a frame manifest."""
    return {
        "dagster/row_count": dg.MetadataValue.int(manifest["rows"]),
        **class_balance(manifest["label_counts"]),
        "fingerprint": manifest["fingerprint"],
        "path": dg.MetadataValue.path(manifest["path"]),
    }


def _fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_table(columns: dict[str, dict | None], keys=METRIC_KEYS) -> dg.MetadataValue:
    """Metrics side by side, one column per model (e.g. challenger vs champion)."""
    names = [name for name, metrics in columns.items() if metrics]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_fmt(columns[name].get(key)) for name in names) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def plots_markdown(plots: dict[str, str], title: str = "") -> dg.MetadataValue:
    """PNG plots embedded as data URIs: they render inline in the asset's metadata panel."""
    parts = [f"**{title}**\n"] if title else []
    for name, path in plots.items():
        if not Path(path).is_file():
            parts.append(f"_{name}: {path} is missing_")
            continue
        data = base64.b64encode(Path(path).read_bytes()).decode()
        parts.append(f"![{name}](data:image/png;base64,{data})")
    return dg.MetadataValue.md("\n\n".join(parts) if plots else "_no plots_")


def scalar_metrics(prefix: str, metrics: dict) -> dict:
    """Each numeric metric as its own float entry, so the UI can plot it across materializations."""
    return {
        f"{prefix}{key}": dg.MetadataValue.float(float(value))
        for key, value in metrics.items()
        if key in METRIC_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def check_table(rows: list[dict], columns: list[str]) -> dg.MetadataValue:
    frame = pd.DataFrame(rows, columns=columns)
    return dg.MetadataValue.md(frame.map(_cell).to_markdown(index=False) if len(frame) else "_nothing to show_")


# ----- monitoring ---------------------------------------------------------------------------------------


def _opt_float(value) -> dg.MetadataValue | str:
    return dg.MetadataValue.float(float(value)) if value is not None else "none"


def log_state_metadata(state: dict) -> dict:
    """The prediction log's state (``stages.monitoring.observe_prediction_log``) as observation metadata."""
    return {
        "rows": dg.MetadataValue.int(state["predictions"]),
        "max_id": dg.MetadataValue.int(state["max_id"]),
        "last_prediction_at": state["last_prediction_at"] or "none yet",
        "first_prediction_at": state["first_prediction_at"] or "none yet",
        "feedback_rows": dg.MetadataValue.int(state["feedback"]),
        "log_url": state["url"],
    }


def traffic_metadata(manifest: dict) -> dict:
    """One day's logged traffic (``stages.monitoring.snapshot_daily_predictions``)."""
    return {
        "dagster/row_count": dg.MetadataValue.int(manifest["rows"]),
        "fake_rate": _opt_float(manifest["fake_rate"]),
        "mean_confidence": _opt_float(manifest["mean_confidence"]),
        "mean_prob_fake": _opt_float(manifest["mean_prob_fake"]),
        "by_model_version": dg.MetadataValue.json(manifest["by_model_version"]),
        "by_origin": dg.MetadataValue.json(manifest["by_origin"]),
        "first_prediction_at": manifest["first_at"] or "none",
        "last_prediction_at": manifest["last_at"] or "none",
        "path": dg.MetadataValue.path(manifest["path"]),
    }


def drift_features_table(summary: dict) -> dg.MetadataValue:
    rows = [
        {
            "feature": name,
            "stattest": f["stattest"],
            "score": _fmt(f["score"]),
            "threshold": _fmt(f["threshold"]),
            "drifted": f["drifted"],
        }
        for name, f in summary["features"].items()
    ]
    emb = summary["embedding_drift"]
    rows.append(
        {
            "feature": "embeddings",
            "stattest": "domain classifier ROC AUC",
            "score": _fmt(emb["score"]),
            "threshold": _fmt(emb["threshold"]),
            "drifted": emb["drifted"],
        }
    )
    return check_table(rows, ["feature", "stattest", "score", "threshold", "drifted"])


def drift_metadata(manifest: dict) -> dict:
    """A drift report (``stages.monitoring.report_drift``): the verdict, per-feature scores, files, plot."""
    meta = {
        "status": manifest["status"],
        "drifted": manifest["drifted"],
        "partition": manifest["partition"],
        "reference_model_version": manifest["reference_model_version"],
    }
    if manifest["status"] == "insufficient_data":
        return {
            **meta,
            "dagster/row_count": dg.MetadataValue.int(manifest["rows"]),
            "reason": manifest["reason"],
            "min_current_rows": dg.MetadataValue.int(manifest["min_current_rows"]),
        }
    emb = manifest["embedding_drift"]
    return {
        **meta,
        "dagster/row_count": dg.MetadataValue.int(manifest["n_current"]),
        "drift_share": dg.MetadataValue.float(manifest["drift_share"]),
        "drift_share_threshold": dg.MetadataValue.float(manifest["drift_share_threshold"]),
        "embedding_drift": _opt_float(emb["score"]),
        "embedding_threshold": _opt_float(emb["threshold"]),
        "n_current": dg.MetadataValue.int(manifest["n_current"]),
        "n_reference": dg.MetadataValue.int(manifest["n_reference"]),
        "reasons": "; ".join(manifest["reasons"]) or "none",
        "features": drift_features_table(manifest),
        "plot": plots_markdown({"drift per feature": manifest["plot_path"]}),
        "report_html": dg.MetadataValue.path(manifest["html_path"]),
        "report_json": dg.MetadataValue.path(manifest["json_path"]),
        "seconds": dg.MetadataValue.float(float(manifest["seconds"])),
    }
