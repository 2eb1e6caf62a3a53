"""The model registry on disk: bundles under ``FAKENEWS_HOME/models/<version>``, and the production
champion as a symlink that promotion swaps atomically (``os.replace`` of a fresh link): a crash at any
point leaves either the old champion or the new one serving, never a half state."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from fakenews_ml.bundle import read_meta
from fakenews_ml.environment import bundles_dir, production_link
from fakenews_ml.errors import BundleError

HISTORY_FILE = "promotions.jsonl"


def champion_path(link: Path | None = None) -> Path | None:
    """The bundle currently in production, or None when nothing was promoted yet."""
    link = link or production_link()
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    if not target.is_dir():
        raise BundleError(f"production link {link} points to {target}, which does not exist")
    return target


def champion_lineage(link: Path | None = None) -> dict | None:
    """Which bundle is in production now, for a new bundle's lineage (its parent); None before the first."""
    try:
        path = champion_path(link)
        return {"version": read_meta(path)["version"], "bundle": path.name} if path is not None else None
    except (BundleError, OSError, KeyError):
        return None  # a broken champion is not a parent


def promote(bundle_path: Path | str, reason: str = "", link: Path | None = None) -> Path:
    """Make ``bundle_path`` the champion. The bundle is checked complete before the link moves."""
    bundle_path = Path(bundle_path).resolve()
    meta = read_meta(bundle_path)
    link = link or production_link()
    link.parent.mkdir(parents=True, exist_ok=True)
    previous = champion_path(link)
    staging = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    staging.symlink_to(bundle_path, target_is_directory=True)
    os.replace(staging, link)  # atomic on POSIX: readers see the old or the new target
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": meta["version"],
        "path": str(bundle_path),
        "previous": str(previous) if previous else None,
        "reason": reason,
    }
    with open(link.parent / HISTORY_FILE, "a") as history:
        history.write(json.dumps(record) + "\n")
    return bundle_path


def promotion_history(link: Path | None = None) -> list[dict]:
    file = (link or production_link()).parent / HISTORY_FILE
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def list_bundles(root: Path | None = None) -> list[dict]:
    """Every complete bundle under ``root`` (default: FAKENEWS_HOME/models), newest first, with its meta."""
    root = root or bundles_dir()
    champion = champion_path()
    found = []
    for path in sorted(root.iterdir() if root.exists() else []):
        if path.name.startswith("."):
            continue
        try:
            meta = read_meta(path)
        except (BundleError, ValueError):
            continue  # half-written or foreign folders are not bundles
        found.append({"path": path, "meta": meta, "champion": champion is not None and path.resolve() == champion})
    return sorted(found, key=lambda b: b["meta"]["created_at"], reverse=True)
