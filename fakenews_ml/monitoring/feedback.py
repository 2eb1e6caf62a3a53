"""Import labels people gave back (``fakenews feedback import CSV``): checked by the same data-quality
suite as raw training data, then stored all at once or not at all.

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
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.tables import read_csv_strict


def feedback_validation_config() -> ValidationConfig:
    """The raw-data suite, relaxed where a small labelled batch legitimately differs from a training set:
    one row is enough, and a batch may be all fake or all real."""
    return ValidationConfig(min_rows=1, min_fake_fraction=0.0, max_fake_fraction=1.0)


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
        blank = raw.index[raw[_column(raw, "title")].fillna("").astype(str).str.strip() == ""]
        lines = ", ".join(str(i + 2) for i in blank[:5])
        raise SchemaError(f"{path}: {dropped} row(s) have an empty title (CSV line(s) {lines}); nothing imported")
    try:
        raise_if_failed(validate_news(frame, config or feedback_validation_config()))
    except ValidationFailed as exc:
        raise ValidationFailed(f"{path}: feedback rejected, nothing imported: {exc}", exc.result) from None
    rows = [
        {"title": title, "label": int(label), "source": row_source}
        for title, label, row_source in zip(frame["title"], frame["label"], frame["source"])
    ]
    for name in ("prediction_id", "request_id"):
        column = _column(raw, name)
        if column is not None:
            values = _ids(raw[column], path) if name == "prediction_id" else _strings(raw[column])
            for row, value in zip(rows, values):
                row[name] = value
    try:
        return len(log.add_feedback(rows, source=source))
    except InputError as exc:
        # add_feedback counts rows from 0; the file's reader wants CSV lines.
        raise InputError(f"{path}: {_as_csv_line(str(exc))}; nothing imported") from None


def _column(raw: pd.DataFrame, name: str) -> str | None:
    return next((c for c in raw.columns if str(c).strip().lower() == name), None)


def _ids(values: pd.Series, path: Path) -> list[int | None]:
    out = []
    for i, value in enumerate(values):
        text = "" if pd.isna(value) else str(value).strip()
        if not text:
            out.append(None)
        elif text.isdigit() and int(text) > 0:
            out.append(int(text))
        else:
            raise SchemaError(
                f"{path}: prediction_id {text!r} on CSV line {i + 2} is not a positive integer; nothing imported"
            )
    return out


def _strings(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) or not str(v).strip() else str(v).strip() for v in values]


def _as_csv_line(message: str) -> str:
    prefix = "feedback row "
    if message.startswith(prefix):
        number, _, rest = message[len(prefix) :].partition(":")
        if number.isdigit():
            return f"CSV line {int(number) + 2}:{rest}"
    return message
