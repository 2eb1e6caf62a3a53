"""Content-addressed artifact folders: ``FAKENEWS_HOME/assets/<stage>/<key>/``.

The key is a hash of everything the artifact was made from (input fingerprints, config, code version), so
the same inputs always land in the same folder and a folder is never overwritten with something else. A
folder is complete once its ``manifest.json`` exists: it is built in a hidden staging folder and renamed
into place, so a crash leaves no half-written artifact where a reader would find it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from fakenews_ml.environment import home_path

MANIFEST = "manifest.json"


def content_key(*parts) -> str:
    """A short, stable hash of JSON-able parts (dict key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def artifact_dir(stage: str, key: str) -> Path:
    return home_path("assets", stage, key)


def read_manifest(folder: Path | str) -> dict | None:
    """The manifest of a complete artifact folder, or None when the folder is absent or incomplete."""
    file = Path(folder) / MANIFEST
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def staged_artifact(target: Path):
    """Yield an empty staging folder; on success it becomes ``target`` (with whatever manifest the
    caller wrote into it). If another writer finished ``target`` first, theirs is kept: same key, same
    content."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    staging.chmod(0o755)
    try:
        yield staging
        if not (staging / MANIFEST).exists():
            raise RuntimeError(f"artifact {target} was staged without a {MANIFEST}")
        if target.exists():
            if read_manifest(target) is not None:
                shutil.rmtree(staging)
                return
            shutil.rmtree(target)  # an incomplete leftover from a crashed writer
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_manifest(folder: Path, manifest: dict) -> dict:
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def save_frame(frame: pd.DataFrame, path: Path) -> Path:
    frame.reset_index(drop=True).to_parquet(path, index=False)
    return path


def load_frame(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"artifact file {path} is missing; re-materialize the asset that wrote it (its manifest names it)"
        )
    return pd.read_parquet(path)
