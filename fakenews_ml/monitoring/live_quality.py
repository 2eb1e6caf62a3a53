"""Live quality: how right the served model was on the traffic people labelled (feedback linked to a logged
prediction), per UTC day and per model version: accuracy, macro-F1 and the confusion counts.

One function computes it for both the Dagster ``live_quality`` asset and the dashboard's chart, so the two
show the same numbers. Labels are the latest feedback per prediction (people correct themselves)."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["day", "model_version", "rows", "accuracy", "macro_f1", "tn", "fp", "fn", "tp"]


def _f1(tp: int, fp: int, fn: int) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def scores(truth: pd.Series, predicted: pd.Series) -> dict:
    """Accuracy, macro-F1 (over real and fake; a class absent from both truth and prediction scores 0) and the
    confusion counts (fake is the positive class)."""
    truth, predicted = truth.astype(int).to_numpy(), predicted.astype(int).to_numpy()
    tp = int(((truth == 1) & (predicted == 1)).sum())
    tn = int(((truth == 0) & (predicted == 0)).sum())
    fp = int(((truth == 0) & (predicted == 1)).sum())
    fn = int(((truth == 1) & (predicted == 0)).sum())
    rows = len(truth)
    return {
        "rows": rows,
        "accuracy": (tp + tn) / rows if rows else None,
        "macro_f1": (_f1(tp, fp, fn) + _f1(tn, fn, fp)) / 2 if rows else None,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def live_quality(labelled: pd.DataFrame) -> pd.DataFrame:
    """One row per (UTC day, model version) of ``labelled`` (``PredictionLog.labelled_predictions``: created_at,
    model_version, predicted, label), oldest day first (an empty frame with ``COLUMNS`` when nothing is labelled)."""
    if labelled.empty:
        return pd.DataFrame(columns=COLUMNS)
    days = labelled["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    rows = [
        {"day": day, "model_version": str(version), **scores(part["label"], part["predicted"])}
        for (day, version), part in labelled.assign(day=days).groupby(["day", "model_version"], sort=True)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
