"""The model registry in the artifact store: bundles under ``models/<key>``, and the production champion as
``production/champion``, a relative link that promotion swaps in one rename (``fakenews_ml.atomic``): a crash at
any point leaves either the old champion or the new one serving, never a half state. Each promotion is
appended to ``production/promotions.jsonl``."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from fakenews_ml.atomic import swap_symlink
from fakenews_ml.bundle import read_meta
from fakenews_ml.environment import artifact_store
from fakenews_ml.errors import BundleError
from fakenews_ml.store import ArtifactStore, LocationError, check_location

MODELS = "models"
CHAMPION = "production/champion"
HISTORY = "production/promotions.jsonl"


def champion_link(store: ArtifactStore | None = None) -> Path:
    """The local path of the champion link (what a server watches)."""
    return (store or artifact_store()).path(CHAMPION)


def champion_location(store: ArtifactStore | None = None) -> str | None:
    """The location of the bundle in production (``models/<key>``), or None before the first promotion."""
    store = store or artifact_store()
    link = store.path(CHAMPION)
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    if target.is_absolute():  # a link written by an older version: it names this machine's path
        return store.location(target)
    return check_location(os.path.normpath(PurePosixPath(CHAMPION).parent / target.as_posix()))


def champion_path(store: ArtifactStore | None = None) -> Path | None:
    """The local folder of the bundle in production, or None when nothing was promoted yet."""
    store = store or artifact_store()
    location = champion_location(store)
    if location is None:
        return None
    path = store.path(location)
    if not path.is_dir():
        raise BundleError(f"the production champion {location} does not exist in the artifact store")
    return path


def champion_lineage(store: ArtifactStore | None = None) -> dict | None:
    """Which bundle is in production now, for a new bundle's lineage (its parent); None before the first."""
    try:
        path = champion_path(store)
        if path is None:
            return None
        return {"version": read_meta(path)["version"], "bundle": champion_location(store)}
    except (BundleError, LocationError, OSError, KeyError):
        return None  # a broken champion is not a parent


def bundle_location(bundle: Path | str, store: ArtifactStore | None = None) -> str:
    """The location of a bundle given as a location or as a local path inside the store."""
    store = store or artifact_store()
    text = str(bundle)
    return store.location(bundle) if Path(text).is_absolute() else check_location(text)


def promote(bundle: Path | str, reason: str = "", store: ArtifactStore | None = None) -> str:
    """Make ``bundle`` (a location, or a path inside the store) the champion; returns its location. The bundle
    is checked complete before the link moves."""
    store = store or artifact_store()
    location = bundle_location(bundle, store)
    meta = read_meta(store.fetch(location))
    previous = champion_location(store)
    link = store.path(CHAMPION)
    swap_symlink(link, os.path.relpath(store.path(location), link.parent))
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": meta["version"],
        "location": location,
        "previous": previous,
        "reason": reason,
    }
    with open(store.path(HISTORY), "a") as history:  # one short line per append
        history.write(json.dumps(record) + "\n")
    return location


def promotion_history(store: ArtifactStore | None = None) -> list[dict]:
    file = (store or artifact_store()).path(HISTORY)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def list_bundles(store: ArtifactStore | None = None) -> list[dict]:
    """Every complete bundle under ``models/``, newest first: location, local path, meta, champion or not."""
    store = store or artifact_store()
    root = store.path(MODELS)
    champion = champion_location(store)
    found = []
    for path in sorted(root.iterdir() if root.exists() else []):
        if path.name.startswith("."):
            continue
        try:
            meta = read_meta(path)
        except (BundleError, ValueError):
            continue  # half-written or foreign folders are not bundles
        location = f"{MODELS}/{path.name}"
        found.append({"location": location, "path": path, "meta": meta, "champion": location == champion})
    return sorted(found, key=lambda b: b["meta"]["created_at"], reverse=True)
