"""What the Predict page accepts, checked before any model work, each problem as one clear message.

The limits follow the API's (``ServeConfig``): a headline over ``max_title_chars`` is **rejected**, not
truncated, so nobody reads a verdict about text the model never saw; an upload over the size or row limit
is rejected whole. What counts as a headline is the API's and the predictor's rule
(``fakenews_ml.headlines``: some letter or digit, no NUL). Nothing rejected is classified or logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fakenews_ml.config import PredictConfig, ServeConfig
from fakenews_ml.errors import FakeNewsError
from fakenews_ml.headlines import headline_problem
from fakenews_ml.tables import csv_line, parse_csv_bytes, require_titles

MAX_UPLOAD_BYTES = 5_000_000  # below server.maxUploadSize (dashboards/.streamlit/config.toml)


class InputProblem(ValueError):
    """Input the dashboard refuses; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Limits:
    max_title_chars: int = ServeConfig.model_fields["max_title_chars"].default
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_rows: int = PredictConfig.model_fields["max_batch"].default


def check_headline(text: str | None, limits: Limits = Limits()) -> str:
    """The headline, stripped, or an InputProblem."""
    title = (text or "").strip()
    if not title:
        raise InputProblem("The headline is empty: type or paste a headline first.")
    problem = headline_problem(title)
    if problem is not None:
        raise InputProblem(f"The headline {problem}: there is nothing for the model to read. Nothing was classified.")
    if len(title) > limits.max_title_chars:
        raise InputProblem(
            f"The headline is {len(title):,} characters long; the limit is {limits.max_title_chars:,} "
            "(the same as the API's). Paste the headline only, not the article: nothing was classified."
        )
    return title


def read_upload(name: str, data: bytes, limits: Limits = Limits()) -> pd.DataFrame:
    """A CSV upload as a frame of strings with a usable ``title`` column (stripped), or an InputProblem."""
    if len(data) > limits.max_upload_bytes:
        raise InputProblem(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {limits.max_upload_bytes / 1e6:.1f} MB. "
            f"Split it into smaller files (at most {limits.max_rows:,} headlines each)."
        )
    try:
        frame = require_titles(parse_csv_bytes(data, name), name)
    except FakeNewsError as exc:
        raise InputProblem(str(exc)) from None
    if len(frame) > limits.max_rows:
        raise InputProblem(
            f"{name} has {len(frame):,} rows; the limit is {limits.max_rows:,} per file. Split it into smaller files."
        )
    titles = frame["title"].astype(str).str.strip()
    too_long = [i for i, length in enumerate(titles.str.len()) if length > limits.max_title_chars]
    if len(too_long):
        lines = ", ".join(str(csv_line(frame, i)) for i in too_long[:5])
        raise InputProblem(
            f"{name}: {len(too_long)} title(s) are longer than {limits.max_title_chars:,} characters (CSV line(s) {lines}). "
            "Headlines only, please: nothing was classified."
        )
    return frame.assign(title=titles)
