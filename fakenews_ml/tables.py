"""Strict CSV in, atomic CSV out: the file-handling rules every entry point shares."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from fakenews_ml.atomic import atomic_path
from fakenews_ml.errors import DataSourceError, SchemaError


def parse_csv_bytes(data: bytes, where: str) -> pd.DataFrame:
    """All columns as strings; a clear SchemaError for non-UTF-8 bytes, an empty file or a broken CSV."""
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{where}: not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 4]!r}); re-save the file as UTF-8"
        ) from None
    if not decoded.strip():
        raise SchemaError(f"{where}: the file is empty")
    try:
        return pd.read_csv(io.StringIO(decoded), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SchemaError(f"{where}: not a readable CSV ({exc})") from None


def read_csv_strict(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"file not found: {path}")
    return parse_csv_bytes(path.read_bytes(), str(path))


def require_titles(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The frame with a usable ``title`` column, or a SchemaError naming what is wrong and where."""
    if "title" not in frame.columns:
        raise SchemaError(f"{where}: no 'title' column (found: {list(frame.columns)})")
    blank = frame.index[frame["title"].isna() | (frame["title"].astype(str).str.strip() == "")]
    if len(blank):
        rows = ", ".join(str(i + 2) for i in blank[:5])  # +2: header line, 1-based
        raise SchemaError(f"{where}: {len(blank)} row(s) have an empty title (CSV line(s) {rows})")
    return frame


def read_title_csv(path: Path | str) -> pd.DataFrame:
    return require_titles(read_csv_strict(path), str(path))


def write_csv_atomically(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8")
    return path
