"""The model registry in the artifact store: bundles under ``models/<key>``, and the production champion, a
pointer the store replaces in one step (a relative link locally, an object under a generation precondition in
a bucket): a crash at any point leaves either the old champion or the new one serving, never a half state.
Each promotion is recorded in the store's promotion history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fakenews_ml.bundle import read_meta
from fakenews_ml.environment import artifact_store
from fakenews_ml.errors import BundleError
from fakenews_ml.store import CHAMPION_LINK, ArtifactStore, LocationError, check_location

MODELS = "models"


def champion_link(store: ArtifactStore | None = None) -> Path:
    """The local path of the champion link (what a server watches; a bucket store keeps it in its mirror)."""
    return (store or artifact_store()).path(CHAMPION_LINK)


def champion_location(store: ArtifactStore | None = None) -> str | None:
    """The location of the bundle in production (``models/<key>``), or None before the first promotion."""
    return (store or artifact_store()).read_champion()


def champion_path(store: ArtifactStore | None = None) -> Path | None:
    """The local folder of the bundle in production, or None when nothing was promoted yet."""
    store = store or artifact_store()
    location = champion_location(store)
    if location is None:
        return None
    try:
        return store.fetch(location)
    except FileNotFoundError:
        raise BundleError(f"the production champion {location} does not exist in the artifact store") from None


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


def promote(
    bundle: Path | str, reason: str = "", store: ArtifactStore | None = None, expected: str | None = ...
) -> str:
    """Make ``bundle`` (a location, or a path inside the store) the champion; returns its location. The bundle
    is checked complete before the pointer moves. With ``expected`` (a location, or None for "no champion yet"),
    the promotion happens only if that is still the champion (``ChampionMoved`` otherwise): of two concurrent
    promotions from the same champion, one wins."""
    store = store or artifact_store()
    location = bundle_location(bundle, store)
    meta = read_meta(store.fetch(location))
    previous = store.read_champion()
    store.write_champion(location, previous if expected is ... else expected)
    store.append_promotion(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "version": meta["version"],
            "location": location,
            "previous": previous,
            "reason": reason,
        }
    )
    return location


def promotion_history(store: ArtifactStore | None = None) -> list[dict]:
    return (store or artifact_store()).promotions()


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


def resolve_bundle(ident: str, store: ArtifactStore | None = None) -> dict:
    """The bundle (as ``list_bundles`` lists it) that ``ident`` names: its version, its folder name or its
    location, exactly, or a prefix of one of them that only one bundle has. BundleError naming the problem
    otherwise (no such bundle, or which ones an ambiguous prefix matches)."""
    ident = str(ident).strip()
    if not ident:
        raise BundleError("no model id given: pass a version (or a unique prefix of one); see `fakenews models list`")
    bundles = list_bundles(store)

    def names(bundle: dict) -> tuple[str, str, str]:
        return bundle["meta"]["version"], bundle["location"].split("/", 1)[1], bundle["location"]

    exact = [b for b in bundles if ident in names(b)]
    matches = exact or [b for b in bundles if any(name.startswith(ident) for name in names(b))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BundleError(
            f"no model bundle {ident!r} in the store ({len(bundles)} bundle(s); see `fakenews models list`)"
        )
    shown = ", ".join(b["meta"]["version"] for b in matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise BundleError(f"{ident!r} matches {len(matches)} bundles ({shown}): give more of the version")


def previous_champion(store: ArtifactStore | None = None) -> str | None:
    """The location that was champion before the current one (from the promotion history), or None."""
    store = store or artifact_store()
    current = champion_location(store)
    for record in reversed(promotion_history(store)):
        if record.get("location") == current:
            previous = record.get("previous")
            return previous if previous and previous != current else None
    return None


def rollback(ident: str | None = None, store: ArtifactStore | None = None, reason: str = "") -> dict:
    """Re-point the champion at an earlier bundle (``ident``: a version or unique prefix; default the champion
    before the current one), atomically and only if the champion is still the one read here (another promotion
    in between raises ChampionMoved). Recorded in the promotion history; a running API picks it up through
    its champion watcher. Returns ``{"version", "location", "previous", "previous_version"}``."""
    store = store or artifact_store()
    current = champion_location(store)
    if current is None:
        raise BundleError("nothing to roll back: no model has been promoted yet")
    if ident is None:
        target = previous_champion(store)
        if target is None:
            raise BundleError("no previous champion in the promotion history: name the bundle to roll back to")
        location = target
    else:
        location = resolve_bundle(ident, store)["location"]
    if location == current:
        raise BundleError(f"{location} is the champion already")
    previous_version = _version_or_none(store, current)
    promote(location, reason or f"rollback from {previous_version or current}", store, expected=current)
    return {
        "version": read_meta(store.fetch(location))["version"],
        "location": location,
        "previous": current,
        "previous_version": previous_version,
    }


def _version_or_none(store: ArtifactStore, location: str) -> str | None:
    try:
        return read_meta(store.fetch(location))["version"]
    except (BundleError, FileNotFoundError, LocationError):
        return None
