"""Import labels people gave back (``fakenews feedback import CSV``): each row checked on arrival
(``feedback_rules``: the bounds of the feedback data suite, naming the CSV line), the whole file by the
same data-quality suite as raw training data, then stored all at once or not at all.

The CSV has ``title`` and ``label`` (0/1 or real/fake, 1 = fake), optionally ``prediction_id`` or
``request_id`` linking a row to a logged prediction, and optionally ``source``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fakenews_ml.config import ValidationConfig
from fakenews_ml.data.readers import canonicalize
from fakenews_ml.data.validation import raise_if_failed, validate_news
from fakenews_ml.errors import InputError, SchemaError, ValidationFailed
from fakenews_ml.monitoring.feedback_rules import feedback_title_problem, feedback_validation_config
from fakenews_ml.monitoring.prediction_log import MAX_ID, PredictionLog
from fakenews_ml.tables import csv_line, read_csv_strict

__all__ = ["feedback_validation_config", "import_feedback_csv"]


def quarantine(frame: pd.DataFrame, config: ValidationConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split feedback rows into those that pass the suite's row-level checks (title length, label set) and those
    that do not, the latter with a ``reason`` column. One bad label then cannot fail every retrain: it is kept
    aside, counted and shown, while the rest is merged."""
    chars = frame["title"].fillna("").astype(str).str.len()
    reasons = pd.Series("", index=frame.index, dtype="object")
    reasons[chars < config.min_title_chars] = "title_too_short"
    reasons[chars > config.max_title_chars] = "title_too_long"
    reasons[~frame["label"].isin([0, 1])] = "label_not_0_or_1"
    bad = reasons != ""
    return frame[~bad].reset_index(drop=True), frame[bad].assign(reason=reasons[bad]).reset_index(drop=True)


def import_feedback_csv(
    path: Path | str, log: PredictionLog, source: str | None = None, config: ValidationConfig | None = None
) -> int:
    """Validate ``path`` and store every row as feedback; returns the number stored. Any problem (schema,
    a failed check, a link to an unknown prediction) raises with nothing stored."""
    path = Path(path)
    raw = read_csv_strict(path)
    source = (source or f"import:{path.name}")[:128]  # the store's column width
    frame = canonicalize(raw, source, where=str(path))
    dropped = frame.attrs.get("dropped_empty_titles", 0)
    if dropped:
        # Training readers may skip untitled rows; a label without a headline is a mistake in a feedback file.
        blank = [i for i, t in enumerate(raw[_column(raw, "title")].fillna("").astype(str)) if not t.strip()]
        lines = ", ".join(str(csv_line(raw, i)) for i in blank[:5])
        raise SchemaError(f"{path}: {dropped} row(s) have an empty title (CSV line(s) {lines}); nothing imported")
    # row by row first: the suite tolerates a share of bad titles, the store (and a retrain) none
    bounds = config or feedback_validation_config()
    for i, title in enumerate(frame["title"]):
        problem = feedback_title_problem(title, bounds)
        if problem is not None:
            raise InputError(f"{path}: CSV line {csv_line(raw, i)}: {problem}; nothing imported")
    try:
        raise_if_failed(validate_news(frame, bounds))
    except ValidationFailed as exc:
        raise ValidationFailed(f"{path}: feedback rejected, nothing imported: {exc}", exc.result) from None
    rows = [
        {"title": title, "label": int(label), "source": row_source}
        for title, label, row_source in zip(frame["title"], frame["label"], frame["source"])
    ]
    for name in ("prediction_id", "request_id"):
        column = _column(raw, name)
        if column is not None:
            values = _ids(raw, column, path) if name == "prediction_id" else _strings(raw[column])
            for row, value in zip(rows, values):
                row[name] = value
    try:
        return len(log.add_feedback(rows, source=source))
    except InputError as exc:
        # add_feedback counts rows from 0; the file's reader wants CSV lines.
        raise InputError(f"{path}: {_as_csv_line(str(exc), raw)}; nothing imported") from None


def _column(raw: pd.DataFrame, name: str) -> str | None:
    return next((c for c in raw.columns if str(c).strip().lower() == name), None)


def _ids(raw: pd.DataFrame, column: str, path: Path) -> list[int | None]:
    out = []
    for i, value in enumerate(raw[column]):
        text = "" if pd.isna(value) else str(value).strip()
        if not text:
            out.append(None)
        elif text.isascii() and text.isdigit() and len(text) <= 19 and 1 <= int(text) <= MAX_ID:
            out.append(int(text))
        else:
            raise SchemaError(
                f"{path}: prediction_id {text[:40]!r} on CSV line {csv_line(raw, i)} is not a "
                f"positive integer of at most {MAX_ID}; nothing imported"
            )
    return out


def _strings(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) or not str(v).strip() else str(v).strip() for v in values]


def _as_csv_line(message: str, raw: pd.DataFrame) -> str:
    prefix = "feedback row "
    if message.startswith(prefix):
        number, _, rest = message[len(prefix) :].partition(":")
        if number.isdigit():
            return f"CSV line {csv_line(raw, int(number))}:{rest}"
    return message
