"""Turning manifests into Dagster metadata the UI renders well: Markdown tables, inline plots, JSON."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

SAMPLE_ROWS = 5
CELL_CHARS = 90
METRIC_KEYS = ("accuracy", "macro_f1", "f1_fake", "precision_fake", "recall_fake", "roc_auc", "pr_auc", "ece", "brier", "n", "threshold")


def _cell(value) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def sample_table(frame: pd.DataFrame, columns=("title", "label", "source"), rows: int = SAMPLE_ROWS) -> dg.MetadataValue:
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
