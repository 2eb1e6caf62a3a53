"""validated_news: the raw news plus the feedback labels people gave, the frame the Great Expectations suite
judges (with the suite's bounds recorded beside it)."""

from __future__ import annotations

import pandas as pd

from fakenews_ml.artifacts import (
    artifact_location,
    cached_or_build,
    content_key,
    load_frame,
    rows_by_source,
    save_frame,
)
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import ValidationConfig
from fakenews_ml.data.readers import CANONICAL_COLUMNS
from fakenews_ml.data.splits import normalize_title
from fakenews_ml.data.validation import ValidationReport, dropped_rows_outcome, validate_news, with_outcome
from fakenews_ml.manifests import FeedbackLabels, FeedbackMerge, RawNews, ValidatedNews

CODE_VERSION = code_version(__name__)
NEWS_FILE = "news.parquet"


def merge_feedback(news: pd.DataFrame, feedback: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``news`` plus the feedback rows; a news row whose normalised title got a feedback label is replaced by
    it (a person's label is the newer word). Returns the merged frame and how many news rows were replaced."""
    labelled = set(feedback["title"].map(normalize_title))
    replaced = news["title"].map(normalize_title).isin(labelled)
    merged = pd.concat([news[~replaced], feedback[CANONICAL_COLUMNS]], ignore_index=True)
    return merged.astype(news.dtypes.to_dict()), int(replaced.sum())


def stage_validated_news(
    raw: RawNews, config: ValidationConfig, feedback: FeedbackLabels | None = None
) -> ValidatedNews:
    """The raw news, plus the labels of ``feedback`` when there are any.

    Without feedback rows the key (and so the folder, the digest and the data version) is what it is for the
    raw news alone: no feedback, no change, no retraining."""
    settings = config.model_dump()
    if feedback is not None and feedback.news.rows:
        key = content_key(raw.news.digest, settings, feedback.news.digest, CODE_VERSION)
    else:
        feedback, key = None, content_key(raw.news.digest, settings, CODE_VERSION)
    location = artifact_location("validated_news", key)

    def build(staging) -> ValidatedNews:
        frame, merge = load_frame(raw.news), FeedbackMerge()
        if feedback is not None:
            frame, replaced = merge_feedback(frame, load_frame(feedback.news))
            merge = FeedbackMerge(
                rows=feedback.news.rows, replaced_rows=replaced, digest=feedback.news.digest, key=feedback.key
            )
        return ValidatedNews(
            code_version=CODE_VERSION,
            key=key,
            news=save_frame(frame, staging, location, NEWS_FILE),
            validation_config=config,
            raw_digest=raw.news.digest,
            sources=raw.sources,
            read=raw.read,
            feedback=merge,
            rows_by_source=rows_by_source(frame),
        )

    return cached_or_build(location, ValidatedNews, build)


def run_validation_suite(validated: ValidatedNews) -> ValidationReport:
    """The Great Expectations suite on exactly the frame ``validated`` names, with its recorded bounds, plus the
    bound on what reading each source dropped (rows that never reached the frame, so GX cannot see them)."""
    report = validate_news(load_frame(validated.news), validated.validation_config)
    return with_outcome(report, dropped_rows_outcome(validated.read, validated.validation_config.max_dropped_share))
