"""Evaluate a saved bundle on labelled headlines: metrics at the bundle's own threshold, plus plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fakenews_ml.metrics import compute_metrics, save_plots
from fakenews_ml.predict import Predictor, predict_all


def evaluate_predictor(predictor: Predictor, frame: pd.DataFrame, plots_dir: Path | str | None = None) -> dict:
    """``frame`` needs ``title`` and ``label``; returns the metrics dict (with ``plots`` paths when asked)."""
    probs = predict_all(predictor, frame["title"].astype(str).tolist())["prob_fake"].to_numpy()
    labels = frame["label"].astype(int).to_numpy()
    metrics = compute_metrics(labels, probs, predictor.bundle.threshold)
    metrics["model_version"] = predictor.version
    metrics["variant"] = predictor.bundle.variant
    if plots_dir is not None:
        metrics["plots"] = {
            name: str(path) for name, path in save_plots(labels, probs, predictor.bundle.threshold, plots_dir).items()
        }
    return metrics
