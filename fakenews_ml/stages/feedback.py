"""feedback_labels: the labels people gave back, as news rows the next training run merges in."""

from __future__ import annotations

from fakenews_ml.artifacts import (
    artifact_location,
    cached_or_build,
    content_key,
    frame_digest,
    rows_by_source,
    save_frame,
)
from fakenews_ml.code_versions import code_version
from fakenews_ml.data.validation import ValidationReport, validate_news
from fakenews_ml.manifests import FeedbackLabels
from fakenews_ml.monitoring.feedback import feedback_validation_config, quarantine
from fakenews_ml.monitoring.prediction_log import PredictionLog

CODE_VERSION = code_version(__name__)
NEWS_FILE = "news.parquet"
QUARANTINE_FILE = "quarantine.parquet"


def snapshot_feedback(log: PredictionLog) -> FeedbackLabels:
    """Every feedback label so far as a canonical news frame (one row per title, the latest label wins,
    ``source`` = ``feedback:<origin>``), stored content-addressed; rows that fail the suite's row-level checks
    are kept aside in a quarantine file instead of the frame. No feedback gives the same empty snapshot every
    time, so nothing downstream looks changed."""
    frame = log.feedback_frame()
    config = feedback_validation_config()
    kept, held = quarantine(frame, config)
    key = content_key("feedback_labels", frame_digest(frame), config.model_dump(), CODE_VERSION)
    location = artifact_location("feedback_labels", key)
    return cached_or_build(
        location,
        FeedbackLabels,
        lambda staging: FeedbackLabels(
            code_version=CODE_VERSION,
            key=key,
            news=save_frame(kept, staging, location, NEWS_FILE),
            validation_config=config,
            rows_by_source=rows_by_source(kept),
            quarantine=save_frame(held, staging, location, QUARANTINE_FILE) if len(held) else None,
            quarantined_by_reason={str(k): int(n) for k, n in held["reason"].value_counts().items()}
            if len(held)
            else {},
        ),
    )


def run_feedback_suite(feedback: FeedbackLabels) -> ValidationReport:
    """The raw-data Great Expectations suite (with the feedback bounds recorded in the manifest) on exactly the
    snapshot ``feedback`` names. No labels at all is valid: there is simply nothing to merge."""
    from fakenews_ml.artifacts import load_frame

    if feedback.news.rows == 0:
        return ValidationReport(success=True, rows=0, results=[])
    return validate_news(load_frame(feedback.news), feedback.validation_config)
