"""live_quality: one UTC day of labelled traffic (feedback linked to logged predictions) scored per model version."""

from __future__ import annotations

from fakenews_ml.artifacts import frame_digest
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import QualityBounds
from fakenews_ml.manifests import LiveQuality, Quality
from fakenews_ml.monitoring.live_quality import live_quality, scores
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.stages.monitoring import day_bounds

CODE_VERSION = code_version(__name__)


def _quality(values: dict) -> Quality:
    return Quality(
        rows=values["rows"],
        accuracy=values["accuracy"],
        macro_f1=values["macro_f1"],
        confusion_matrix=[[values["tn"], values["fp"]], [values["fn"], values["tp"]]],
    )


def measure_live_quality(log: PredictionLog, day: str, bounds: QualityBounds) -> LiveQuality:
    """Accuracy, macro-F1 and the confusion of ``day``'s labelled predictions, overall and per model version,
    judged against ``bounds`` (a day with fewer than ``min_labelled_rows`` labels is not judged)."""
    start, end = day_bounds(day)
    labelled = log.labelled_predictions(start, end)
    overall = _quality(scores(labelled["label"], labelled["predicted"]))
    per_version = live_quality(labelled)
    judged = overall.rows >= bounds.min_labelled_rows
    return LiveQuality(
        code_version=CODE_VERSION,
        day=day,
        digest=frame_digest(labelled),
        predictions=len(log.window(start, end)),
        overall=overall,
        by_model_version={row["model_version"]: _quality(row) for row in per_version.to_dict("records")},
        bounds=bounds,
        judged=judged,
        passed=not judged or overall.macro_f1 >= bounds.min_macro_f1,
    )
