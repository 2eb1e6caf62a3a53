"""Typed manifests turned into Dagster metadata the UI renders well: tables as ``TableMetadataValue``, key
numbers as floats rounded to what they mean (the UI plots them across materializations), locations in the
artifact store as paths relative to it, plots inline."""

from __future__ import annotations

import base64
import math
from urllib.parse import urlencode

import dagster as dg
import pandas as pd

from fakenews_ml.environment import artifact_store, dashboard_url
from fakenews_ml.manifests import (
    DailyPredictions,
    DriftReport,
    FrameFile,
    LabelCounts,
    LiveQuality,
    Metrics,
    PredictionLogState,
)
from fakenews_ml.monitoring.verdict import verdict_of

SAMPLE_ROWS = 5
CELL_CHARS = 90
DIGITS = 4  # metrics and shares: a fourth decimal is the most a 2,000-row test split can tell apart
# The metrics shown as separate floats (plotted over time); the full set is in the metrics table.
PLOTTED_METRICS = ("macro_f1", "roc_auc", "accuracy", "ece")
TABLE_METRICS = (
    "accuracy",
    "macro_f1",
    "f1_fake",
    "precision_fake",
    "recall_fake",
    "roc_auc",
    "pr_auc",
    "ece",
    "brier",
)


def rounded(value: float | None, digits: int = DIGITS) -> float | None:
    """``digits`` decimals; a value too small for them (a learning rate, a weight decay) keeps 3 significant ones."""
    if value is None:
        return None
    value = float(value)
    if value == 0 or not math.isfinite(value) or abs(value) >= 10 ** (1 - digits):
        return round(value, digits) if math.isfinite(value) else value
    return float(f"{value:.3g}")


def rounded_json(value, digits: int = DIGITS):
    """``value`` (dicts, lists, numbers) with every float rounded: JSON metadata without 16-digit noise."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return rounded(value, digits)
    if isinstance(value, dict):
        return {k: rounded_json(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded_json(v, digits) for v in value]
    return value


def json_metadata(value, digits: int = DIGITS) -> dg.MetadataValue:
    """A JSON blob for settings and lineage (never for a table of numbers: ``table``), floats rounded."""
    return dg.MetadataValue.json(rounded_json(value, digits))


def number(value: float | None, digits: int = DIGITS) -> dg.MetadataValue | str:
    """A float the UI can plot, or 'none' when there is no value."""
    return dg.MetadataValue.float(rounded(value, digits)) if value is not None else "none"


def location(value: str | None) -> dg.MetadataValue | str:
    """A location in the artifact store, shown relative to the store's root."""
    return dg.MetadataValue.path(value) if value else "none"


def store_root() -> dg.MetadataValue:
    return dg.MetadataValue.url(artifact_store().uri(""))


def _cell(value) -> str:
    text = str(value).replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _cell_value(value, kind: str):
    return (
        rounded(value) if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool) else value
    )


def table(rows: list[dict], columns: dict[str, str]) -> dg.MetadataValue:
    """Rows as a ``TableMetadataValue``; ``columns`` maps names to Dagster column types (string, float, ...).
    Float cells are rounded to ``DIGITS``."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    records = [
        dg.TableRecord({name: _cell_value(row.get(name), kind) for name, kind in columns.items()}) for row in rows
    ]
    return dg.MetadataValue.table(records, schema=schema)


def sample_table(
    frame: pd.DataFrame, columns=("title", "label", "source"), rows: int = SAMPLE_ROWS
) -> dg.MetadataValue:
    """The first rows (long titles shortened)."""
    shown = frame[[c for c in columns if c in frame.columns]].head(rows)
    kinds = {
        c: "int"
        if pd.api.types.is_integer_dtype(shown[c])
        else "float"
        if pd.api.types.is_float_dtype(shown[c])
        else "string"
        for c in shown.columns
    }
    values = [
        {c: (_cell(v) if kinds[c] == "string" else v.item() if hasattr(v, "item") else v) for c, v in row.items()}
        for row in shown.to_dict("records")
    ]
    return table(values, kinds)


def class_balance(counts: LabelCounts) -> dict:
    return {
        "real_rows": dg.MetadataValue.int(counts.real),
        "fake_rows": dg.MetadataValue.int(counts.fake),
        "fake_share": number(counts.fake_share),
    }


def frame_metadata(file: FrameFile) -> dict:
    """Row count, class balance, fingerprint and location of a stored news frame."""
    return {
        "dagster/row_count": dg.MetadataValue.int(file.rows),
        **class_balance(file.label_counts),
        "fingerprint": file.fingerprint,
        "location": location(file.location),
    }


def counts_table(counts: dict[str, int], key: str = "source") -> dg.MetadataValue:
    return table([{key: name, "rows": n} for name, n in counts.items()], {key: "string", "rows": "int"})


def metrics_table(columns: dict[str, Metrics | None]) -> dg.MetadataValue:
    """Metrics side by side, one column per model or split (e.g. val and test, challenger and champion)."""
    names = [name for name, metrics in columns.items() if metrics is not None]
    rows = [{"metric": key, **{name: rounded(getattr(columns[name], key)) for name in names}} for key in TABLE_METRICS]
    rows.append({"metric": "rows", **{name: float(columns[name].n) for name in names}})
    rows.append({"metric": "threshold", **{name: rounded(columns[name].threshold) for name in names}})
    return table(rows, {"metric": "string", **dict.fromkeys(names, "float")})


def plotted_metrics(prefix: str, metrics: Metrics | None) -> dict:
    """The key metrics as their own floats, so the UI plots them across materializations."""
    if metrics is None:
        return {}
    return {
        f"{prefix}{key}": number(getattr(metrics, key)) for key in PLOTTED_METRICS if getattr(metrics, key) is not None
    }


def history_table(history: list[dict[str, float]]) -> dg.MetadataValue:
    """Per-validation history (epoch, step, the logged metrics)."""
    names = sorted({k for row in history for k in row} - {"epoch", "step"})
    rows = [
        {"epoch": int(r.get("epoch", 0)), "step": int(r.get("step", 0)), **{n: rounded(r.get(n)) for n in names}}
        for r in history
    ]
    return table(rows, {"epoch": "int", "step": "int", **dict.fromkeys(names, "float")})


def plots_markdown(plots: dict[str, str], title: str = "") -> dg.MetadataValue:
    """PNG plots (locations in the store) embedded as data URIs: they render inline in the metadata panel."""
    store = artifact_store()
    parts = [f"**{title}**\n"] if title else []
    for name, where in plots.items():
        path = store.path(where)
        if not path.is_file():
            parts.append(f"_{name}: {where} is missing_")
            continue
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"![{name}](data:image/png;base64,{data})")
    return dg.MetadataValue.md("\n\n".join(parts) if plots else "_no plots_")


# ----- monitoring ---------------------------------------------------------------------------------------


def log_state_metadata(state: PredictionLogState) -> dict:
    """The prediction log's state as observation metadata."""
    return {
        "rows": dg.MetadataValue.int(state.predictions),
        "max_id": dg.MetadataValue.int(state.max_id),
        "last_prediction_at": state.last_prediction_at or "none yet",
        "first_prediction_at": state.first_prediction_at or "none yet",
        "feedback_rows": dg.MetadataValue.int(state.feedback),
        "log_url": state.url,
    }


def traffic_metadata(daily: DailyPredictions) -> dict:
    """One day's logged traffic."""
    versions = [{"model_version": v, **t.model_dump()} for v, t in daily.by_model_version.items()]
    return {
        "dagster/row_count": dg.MetadataValue.int(daily.rows),
        "fake_rate": number(daily.fake_rate),
        "mean_confidence": number(daily.mean_confidence),
        "mean_prob_fake": number(daily.mean_prob_fake),
        "by_model_version": table(
            versions, {"model_version": "string", "rows": "int", "fake_rate": "float", "mean_confidence": "float"}
        ),
        "by_origin": counts_table(daily.by_origin, "origin"),
        "first_prediction_at": daily.first_at or "none",
        "last_prediction_at": daily.last_at or "none",
        "location": location(daily.predictions),
    }


def drift_features_table(report: DriftReport) -> dg.MetadataValue:
    rows = [
        {
            "feature": name,
            "stattest": f.stattest,
            "score": rounded(f.score),
            "threshold": rounded(f.threshold),
            "drifted": f.drifted,
        }
        for name, f in report.features.items()
    ]
    emb = report.embedding_drift
    if emb is not None:
        rows.append(
            {
                "feature": "embeddings",
                "stattest": "domain classifier ROC AUC",
                "score": rounded(emb.score),
                "threshold": rounded(emb.threshold),
                "drifted": emb.drifted,
            }
        )
    return table(
        rows, {"feature": "string", "stattest": "string", "score": "float", "threshold": "float", "drifted": "bool"}
    )


def report_view_url(partition: str) -> str:
    """The dashboard's Monitoring page opened on one day's drift report (the Evidently HTML, full width)."""
    return f"{dashboard_url()}/monitoring?{urlencode({'report': partition})}"


def drift_metadata(report: DriftReport) -> dict:
    """A drift report: the verdict, per-feature scores, locations, the plot."""
    verdict = verdict_of(report.status)
    meta = {
        "status": report.status,
        "verdict": verdict.label,
        "drifted": report.drifted,
        "retrain": verdict.retrain,  # whether the drift sensor answers this day with a retrain
        "partition": report.partition,
        "model_version": report.reference_model_version,
        "model_variant": report.model_variant or "unknown",
    }
    if report.status == "insufficient_data":
        return {
            **meta,
            "dagster/row_count": dg.MetadataValue.int(report.rows),
            "reason": report.reason,
            "min_current_rows": dg.MetadataValue.int(report.min_current_rows),
        }
    emb = report.embedding_drift
    return {
        **meta,
        "dagster/row_count": dg.MetadataValue.int(report.n_current or 0),
        "drift_share": number(report.drift_share),
        "drift_share_threshold": number(report.drift_share_threshold),
        "embedding_drift": number(emb.score if emb else None),
        "embedding_threshold": number(emb.threshold if emb else None),
        "n_current": dg.MetadataValue.int(report.n_current or 0),
        "n_reference": dg.MetadataValue.int(report.n_reference or 0),
        "reasons": "; ".join(report.reasons) or "none",
        "features": drift_features_table(report),
        "plot": plots_markdown({"drift per feature": report.plot} if report.plot else {}),
        "report": dg.MetadataValue.url(report_view_url(report.partition)),
        "report_html": location(report.html),
        "report_json": location(report.json_report),
        "seconds": number(report.seconds, 1),
    }


def live_quality_metadata(quality: LiveQuality) -> dict:
    """One day's live quality: the key floats (plotted over materializations), the confusion, per version."""
    overall = quality.overall
    (tn, fp), (fn, tp) = overall.confusion_matrix
    versions = [
        {
            "model_version": version,
            "rows": q.rows,
            "accuracy": rounded(q.accuracy),
            "macro_f1": rounded(q.macro_f1),
            "tn": q.confusion_matrix[0][0],
            "fp": q.confusion_matrix[0][1],
            "fn": q.confusion_matrix[1][0],
            "tp": q.confusion_matrix[1][1],
        }
        for version, q in quality.by_model_version.items()
    ]
    return {
        "dagster/row_count": dg.MetadataValue.int(overall.rows),
        "labelled_rows": dg.MetadataValue.int(overall.rows),
        "predictions": dg.MetadataValue.int(quality.predictions),
        "accuracy": number(overall.accuracy),
        "macro_f1": number(overall.macro_f1),
        "judged": quality.judged,
        "confusion": dg.MetadataValue.md(
            "| label ↓ predicted → | real | fake |\n|---|---|---|\n"
            f"| **real** | {tn} | {fp} |\n| **fake** | {fn} | {tp} |"
        ),
        "by_model_version": table(
            versions,
            {
                "model_version": "string",
                "rows": "int",
                "accuracy": "float",
                "macro_f1": "float",
                "tn": "int",
                "fp": "int",
                "fn": "int",
                "tp": "int",
            },
        ),
    }
