"""Read any supported news file into the one canonical frame: ``id, title, text, label, source``.

Layouts: WELFake's original (index column, title, text, label), normalised ``title,text,label[,source]``
(FakeNewsNet / ISOT / Constraint style) and plain ``title,label``. Label convention: 1 = fake, 0 = real.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from fakenews_ml.data.sources import ResolvedSource, resolve
from fakenews_ml.errors import DataSourceError, SchemaError
from fakenews_ml.tables import parse_csv_bytes

CANONICAL_COLUMNS = ["id", "title", "text", "label", "source"]
LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1, "true": 0, "false": 1}


def read_sources(uris: list[str], progress: bool = True) -> tuple[pd.DataFrame, list[ResolvedSource]]:
    """Read and concatenate every source; returns the frame and what was read (for lineage)."""
    if not uris:
        raise DataSourceError("no data sources given: pass URIs or set FAKENEWS_SOURCES")
    resolved = [resolve(uri, progress=progress) for uri in uris]
    frames = [read_news_file(src.path, source_name=_source_name(src.uri)) for src in resolved]
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise SchemaError(f"no usable rows in {', '.join(uris)}")
    # what each source lost while being read, and why (the data suite bounds it)
    frame.attrs["read_stats"] = [
        {
            "uri": src.uri,
            "rows_read": len(part) + part.attrs["dropped_empty_titles"],
            "rows_kept": len(part),
            "dropped": {"empty_title": part.attrs["dropped_empty_titles"]},
        }
        for src, part in zip(resolved, frames, strict=True)
    ]
    return frame, resolved


def read_news_file(path: Path | str, source_name: str | None = None) -> pd.DataFrame:
    """One CSV in any supported layout -> canonical frame (rows with an empty title are dropped).

    A header-only file gives an empty canonical frame; a file whose rows all lack a title is an error."""
    path = Path(path)
    raw = _read_csv(path)
    return canonicalize(raw, source_name or path.stem, where=str(path))


def canonicalize(raw: pd.DataFrame, source_name: str, where: str = "input") -> pd.DataFrame:
    columns = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in ("title", "label") if c not in columns]
    if missing:
        raise SchemaError(
            f"{where}: missing column(s) {missing}; found {list(raw.columns)}. "
            "Expected WELFake (,title,text,label), title,text,label[,source] or title,label"
        )
    title = raw[columns["title"]].astype("string").str.strip()
    keep = (title.notna() & (title != "")).to_numpy()
    dropped = int((~keep).sum())
    if len(raw) and not keep.any():
        raise SchemaError(f"{where}: no rows with a non-empty title ({len(raw)} row(s) read)")
    # Rows without a title are dropped before labels are parsed: their labels never matter.
    raw, title = raw[keep], title[keep]
    text = (
        raw[columns["text"]].astype("string").fillna("")
        if "text" in columns
        else pd.Series("", index=raw.index, dtype="string")
    )
    label = _parse_labels(raw[columns["label"]], where)
    source = raw[columns["source"]].astype("string").fillna(source_name) if "source" in columns else source_name
    frame = pd.DataFrame({"title": title, "text": text, "label": label, "source": source}, index=raw.index)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "id", [_row_id(t, x) for t, x in zip(frame["title"], frame["text"])])
    frame = frame.astype({"id": "string", "title": "string", "text": "string", "label": "int8", "source": "string"})
    frame = frame[CANONICAL_COLUMNS]
    frame.attrs["dropped_empty_titles"] = dropped
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataSourceError(f"source file not found: {path}")
    return parse_csv_bytes(path.read_bytes(), str(path))


def _parse_labels(values: pd.Series, where: str) -> pd.Series:
    normalised = values.astype("string").str.strip().str.lower()
    # "1.0" style floats from spreadsheets are fine; anything else is named in the error.
    normalised = normalised.str.replace(r"^([01])\.0+$", r"\1", regex=True)
    mapped = normalised.map(LABEL_WORDS)
    unknown = normalised[mapped.isna()]
    if len(unknown):
        examples = sorted({str(v) for v in unknown.head(1000)})[:5]
        raise SchemaError(
            f"{where}: {len(unknown)} row(s) have unknown label values {examples}; expected 0/1 (1 = fake) or real/fake"
        )
    return mapped.astype("int8")


def _row_id(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\x1f{text}".encode()).hexdigest()[:16]


def _source_name(uri: str) -> str:
    parsed = urlparse(uri)
    path = unquote(parsed.path) if parsed.scheme else uri
    return Path(path.rstrip("/")).stem or uri
