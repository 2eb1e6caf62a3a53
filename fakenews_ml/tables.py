"""Strict CSV in, atomic CSV out: the file-handling rules every entry point shares.

Reading is strict so that no text is ever lost or moved silently: every row must have as many fields as
the header (a row with more or fewer is an error naming its CSV line), quotes must be balanced, column
names must be unique. The one exception makes the commonest hand-written file work: in a file with a
single column (e.g. only ``title``), a line is one value, so a headline with unquoted commas is read
whole, exactly as written. Blank lines are skipped. Each row's CSV line number is kept
(``csv_line``) for messages, so they stay right when quoted values span several lines.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from fakenews_ml.atomic import atomic_path
from fakenews_ml.errors import DataSourceError, SchemaError
from fakenews_ml.headlines import headline_problem

MAX_COLUMNS = 1000  # far above any news file; a header of 150,000 columns is a mistake or an attack
LINES_ATTR = "csv_lines"


def parse_csv_bytes(data: bytes, where: str) -> pd.DataFrame:
    """All columns as strings (an empty value is NaN), in file order; a clear SchemaError for non-UTF-8
    bytes, an empty file, unbalanced quotes, duplicate column names or a row whose field count differs
    from the header's."""
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{where}: not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 4]!r}); re-save the file as UTF-8"
        ) from None
    if not decoded.strip():
        raise SchemaError(f"{where}: the file is empty")
    header, rows, lines = _read_records(decoded, where)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame = frame.mask(frame == "")  # an empty value is NaN, as pandas' reader has it
    frame.attrs[LINES_ATTR] = lines
    return frame


def csv_line(frame: pd.DataFrame, position: int) -> int:
    """The CSV line (1-based, the header is line 1) on which row ``position`` of a parsed frame starts."""
    lines = frame.attrs.get(LINES_ATTR)
    return lines[position] if lines is not None and position < len(lines) else position + 2


class _LineSource:
    """The text's physical lines for ``csv.reader``, remembering the ones the current record took."""

    def __init__(self, text: str):
        self._lines = iter(io.StringIO(text, newline=""))
        self.taken: list[str] = []
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        self.taken.append(line)
        return line


def _read_records(text: str, where: str) -> tuple[list[str], list[list[str]], list[int] | None]:
    """The header, the data records and the CSV line each record starts on (None: line = row + 2)."""
    # one field may be as long as the file (article bodies); the limit is process-wide and only grows
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    # Most files are plain: every record on one line, none blank, all as wide as the header. They are read
    # in one C call; anything else is read record by record, with exact line numbers for the message.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error:
        records = None
    if records and reader.line_num == len(records):
        header, rows = records[0], records[1:]
        width = len(header)
        if header and all(len(row) == width for row in rows) and (width > 1 or all(row[0].strip() for row in rows)):
            return _column_names(header, where), rows, None
    return _read_records_one_by_one(text, where)


def _read_records_one_by_one(text: str, where: str) -> tuple[list[str], list[list[str]], list[int]]:
    source = _LineSource(text)
    reader = csv.reader(source, strict=True)
    header: list[str] | None = None
    rows, lines = [], []
    while True:
        source.taken = []
        start = source.count + 1
        try:
            fields = next(reader)
            problem = None
        except StopIteration:
            break
        except csv.Error as exc:
            fields, problem = None, str(exc)
        raw = "".join(source.taken)
        if not raw.strip() or (fields is not None and len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line (or a lone blank value)
        if header is None:
            if problem is not None:
                raise SchemaError(f"{where}: the header line is not valid CSV ({problem})")
            header = _column_names(fields, where)
            continue
        if len(header) == 1 and (problem is not None or len(fields) != 1):
            # a one-column file: the line is the value, commas and stray quotes included
            if len(source.taken) != 1:
                raise SchemaError(
                    f"{where}: CSV line {start}: a quoted value runs over {len(source.taken)} lines and is not "
                    f"closed where the line ends ({problem or 'more than one field'}); quote it properly"
                )
            fields = [raw.rstrip("\r\n")]
        elif problem is not None:
            raise SchemaError(f"{where}: CSV line {start} is not a readable CSV row ({problem}); check its quotes")
        elif len(fields) != len(header):
            raise SchemaError(
                f"{where}: CSV line {start} has {len(fields)} field{'s' if len(fields) != 1 else ''} but the "
                f"header has {len(header)} "
                f"({_shorten(header)}); quote values that contain commas"
            )
        rows.append(fields)
        lines.append(start)
    if header is None:
        raise SchemaError(f"{where}: the file is empty")
    return header, rows, lines


def _column_names(fields: list[str], where: str) -> list[str]:
    if len(fields) > MAX_COLUMNS:
        raise SchemaError(f"{where}: the header has {len(fields):,} columns; at most {MAX_COLUMNS:,} are read")
    # pandas' name for a column without one, which readers of WELFake's layout (",title,text,label") expect
    names = [name if name != "" else f"Unnamed: {i}" for i, name in enumerate(fields)]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise SchemaError(f"{where}: column name(s) {repeated} appear more than once in the header")
    return names


def _shorten(names: list[str], most: int = 8) -> str:
    """A list of column names for a message, cut after ``most``."""
    if len(names) <= most:
        return str(names)
    return f"{str(names[:most])[:-1]}, ... ({len(names):,} columns)]"


def read_csv_strict(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"file not found: {path}")
    return parse_csv_bytes(path.read_bytes(), str(path))


def require_titles(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The frame with a usable ``title`` column, or a SchemaError naming what is wrong and where."""
    if "title" not in frame.columns:
        raise SchemaError(f"{where}: no 'title' column (found: {_shorten(list(frame.columns))})")
    blank = np.flatnonzero((frame["title"].isna() | (frame["title"].astype(str).str.strip() == "")).to_numpy())
    if len(blank):
        rows = ", ".join(str(csv_line(frame, i)) for i in blank[:5])
        raise SchemaError(f"{where}: {len(blank)} row(s) have an empty title (CSV line(s) {rows})")
    for i, title in enumerate(frame["title"]):  # the predictor's rule, named by CSV line before any model work
        problem = headline_problem(str(title).strip())
        if problem is not None:
            raise SchemaError(f"{where}: the title on CSV line {csv_line(frame, i)} {problem}")
    return frame


def read_title_csv(path: Path | str) -> pd.DataFrame:
    return require_titles(read_csv_strict(path), str(path))


def with_outputs(frame: pd.DataFrame, outputs: dict) -> pd.DataFrame:
    """``frame`` with the ``outputs`` columns added; an input column named like an output is kept, renamed to
    the first free ``<name>_input``, ``<name>_input_2``, ...: never overwritten, never a duplicate name."""
    taken = set(frame.columns) | set(outputs)
    renames = {}
    for name in outputs:
        if name in frame.columns:
            new, k = f"{name}_input", 2
            while new in taken:
                new, k = f"{name}_input_{k}", k + 1
            renames[name] = new
            taken.add(new)
    result = frame.rename(columns=renames)
    for name, values in outputs.items():
        result[name] = values
    return result


def write_csv_atomically(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8")
    return path
