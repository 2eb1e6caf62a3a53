"""The artifact store: one root for everything the project writes, named by locations relative to it.

A location is a relative POSIX path under the root (``models/<key>``, ``assets/raw_news/<key>/news.parquet``):
manifests, lineage and the champion pointer hold locations, never a machine's absolute paths, so a store that
is copied or shared stays valid wherever it is read. The layout:

    assets/<stage>/<key>/   content-addressed step outputs (data frames, splits, tokens, scores, profiles)
    models/<key>/           model bundles (``variants/`` inside each)
    production/champion     the champion pointer, and production/promotions.jsonl its history
    drift_reports/<day>/    one folder per daily drift report
    dagster/manifests/      what the Dagster IO manager hands from asset to asset
    cache/, runs/, logs/    local only: downloads, training logs, the default SQLite prediction log

Writers build a location's file or folder locally (``path``) and then ``publish`` it; readers ``fetch`` it.
Locally both are no-ops around the same folder; a store backed by a bucket copies between the bucket and
a local mirror (``fakenews_ml.environment`` decides which store is in use).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fakenews_ml.errors import FakeNewsError


class LocationError(FakeNewsError):
    """A location that is absolute or climbs out of the store (``..``)."""


def check_location(location: str) -> str:
    """``location`` as a clean relative POSIX path, or LocationError."""
    text = str(location)
    path = PurePosixPath(text)
    if not text or "\\" in text or path.is_absolute() or ".." in path.parts or text != path.as_posix():
        raise LocationError(f"{text!r} is not a location inside the artifact store (relative, no '..')")
    return text


def join(*parts: str) -> str:
    """Locations joined with '/' (each part checked)."""
    return check_location("/".join(part.strip("/") for part in parts if part))


@dataclass(frozen=True)
class ArtifactStore:
    """The local store: a folder. Subclasses add a remote copy (see ``fakenews_ml.environment``)."""

    root: Path

    def path(self, location: str) -> Path:
        """The local path of ``location`` (it may not exist yet)."""
        return self.root / check_location(location)

    def location(self, path: Path | str) -> str:
        """The location of a local ``path`` under the root; LocationError for a path outside it."""
        resolved = Path(path).resolve()
        try:
            return check_location(resolved.relative_to(self.root.resolve()).as_posix())
        except ValueError:
            raise LocationError(f"{path} is not inside the artifact store {self.root}") from None

    def fetch(self, location: str) -> Path:
        """The local path of an existing file or folder; FileNotFoundError naming the location when absent."""
        path = self.path(location)
        if not path.exists():
            raise FileNotFoundError(
                f"{location} is not in the artifact store {self.uri('')}: re-materialize what wrote it"
            )
        return path

    def publish(self, location: str) -> str:
        """Make a finished local write visible to every reader of the store; returns its URI."""
        self.fetch(location)
        return self.uri(location)

    def uri(self, location: str) -> str:
        return (self.root / location).resolve().as_uri() if location else self.root.resolve().as_uri()
