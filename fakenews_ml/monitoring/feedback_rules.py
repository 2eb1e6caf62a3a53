"""The bounds a feedback label must meet, checked when it arrives (``POST /feedback``, the dashboard,
``fakenews feedback import``) with the numbers the feedback data suite uses at retrain time, so that what
the store accepts the suite accepts too: one label can never block every later retrain.

Row-level rules: the label is 0 or 1 (``PredictionLog`` checks it); the title is a headline
(``headlines.headline_problem``) of ``min_title_chars``..``max_title_chars`` characters once stripped (the
suite's ``title_length`` check). The suite's batch-level checks cannot be failed by feedback: its row
count and class balance bounds are relaxed here, and repeated titles are merged (the latest label wins)."""

from __future__ import annotations

from fakenews_ml.config import ValidationConfig
from fakenews_ml.headlines import headline_problem


def feedback_validation_config() -> ValidationConfig:
    """The raw-data suite, relaxed where a small labelled batch legitimately differs from a training set:
    one row is enough, and a batch may be all fake or all real."""
    return ValidationConfig(min_rows=1, min_fake_fraction=0.0, max_fake_fraction=1.0)


def feedback_title_problem(title: str, config: ValidationConfig | None = None) -> str | None:
    """Why ``title`` (stripped) may not be stored as feedback, as 'title ...', or None."""
    config = config or feedback_validation_config()
    problem = headline_problem(title)
    if problem is not None:
        return f"title {problem}"
    if not config.min_title_chars <= len(title) <= config.max_title_chars:
        return (
            f"title is {len(title)} characters long; feedback titles must have {config.min_title_chars} to "
            f"{config.max_title_chars} (the feedback data suite's title_length bounds)"
        )
    return None
