"""Content-addressed artifact folders in the store: ``assets/<stage>/<key>/`` holding files and a ``manifest.json``.

The key is a hash of everything the artifact was made from (input fingerprints, config, code version), so the
same inputs always land in the same folder and a folder is never overwritten with something else. A folder is
complete once it exists: it is built in a staging sibling and renamed into place (``fakenews_ml.atomic``), so
a crash leaves no half-written artifact where a reader would find it. Also here: reading the frames and token
files that manifests name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pandas as pd

from fakenews_ml.atomic import atomic_dir
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.environment import artifact_store
from fakenews_ml.manifests import (
    FrameFile,
    LabelCounts,
    Manifest,
    TitleLengths,
    TokenizedNews,
    dump_manifest,
    load_manifest,
)
from fakenews_ml.store import join

MANIFEST = "manifest.json"
M = TypeVar("M", bound=Manifest)


def content_key(*parts) -> str:
    """A short, stable hash of JSON-able parts (dict key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def artifact_location(stage: str, key: str) -> str:
    return join("assets", stage, key)


def read_manifest(location: str, kind: type[M]) -> M | None:
    """The manifest of a complete artifact folder, or None when it is absent, incomplete or of another kind
    (an older layout): the step then simply runs again."""
    store = artifact_store()
    try:
        manifest = load_manifest(store.fetch(join(location, MANIFEST)).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, kind) else None


@contextmanager
def staged_artifact(location: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes ``location`` (with the manifest the caller wrote
    into it) and is published. If another writer finished it first, theirs is kept: same key, same content."""
    store = artifact_store()
    with atomic_dir(store.path(location), existing="keep") as staging:
        yield staging
        if not (staging / MANIFEST).exists():
            raise RuntimeError(f"artifact {location} was staged without a {MANIFEST}")
    store.publish(location)


def write_manifest(folder: Path, manifest: M) -> M:
    (Path(folder) / MANIFEST).write_text(dump_manifest(manifest))
    return manifest


def cached_or_build(location: str, kind: type[M], build: Callable[[Path], M]) -> M:
    """The manifest already at ``location``, or ``build(staging)``'s, written there atomically."""
    existing = read_manifest(location, kind)
    if existing is not None:
        return existing
    with staged_artifact(location) as staging:
        manifest = write_manifest(staging, build(staging))
    return manifest


# ----- news frames --------------------------------------------------------------------------------------


def frame_digest(frame: pd.DataFrame) -> str:
    """Hash of every cell (not just ids and labels): detects any change in what a step wrote."""
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()[:16]


def fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a frame's rows (ids and labels): the data version used in lineage."""
    digest = hashlib.sha256()
    for row_id, label in zip(frame["id"].astype(str), frame["label"].astype(int)):
        digest.update(f"{row_id}:{label}\n".encode())
    return digest.hexdigest()[:16]


def label_counts(frame: pd.DataFrame) -> LabelCounts:
    counts = frame["label"].astype(int).value_counts()
    return LabelCounts(real=int(counts.get(0, 0)), fake=int(counts.get(1, 0)))


def save_frame(frame: pd.DataFrame, folder: Path, location: str, name: str) -> FrameFile:
    """Write ``frame`` as ``folder/name`` (a staging folder that becomes ``location``) and describe it."""
    frame = frame.reset_index(drop=True)
    frame.to_parquet(folder / name, index=False)
    chars = frame["title"].astype(str).str.len()
    return FrameFile(
        location=join(location, name),
        rows=len(frame),
        fingerprint=fingerprint(frame),
        digest=frame_digest(frame),
        label_counts=label_counts(frame),
        title_chars=TitleLengths(min=int(chars.min()), median=float(chars.median()), max=int(chars.max()))
        if len(frame)
        else None,
    )


def load_frame(file: FrameFile | str) -> pd.DataFrame:
    """The frame a manifest names (a ``FrameFile`` or a location)."""
    location = file.location if isinstance(file, FrameFile) else file
    return pd.read_parquet(artifact_store().fetch(location))


def rows_by_source(frame: pd.DataFrame) -> dict[str, int]:
    return {str(name): int(n) for name, n in frame["source"].value_counts().items()}


def load_tokenized(tokenized: TokenizedNews) -> dict[str, TokenizedSplit]:
    """Every tokenized split a manifest names."""
    store = artifact_store()
    return {name: TokenizedSplit.load(store.fetch(file.location)) for name, file in tokenized.splits.items()}
