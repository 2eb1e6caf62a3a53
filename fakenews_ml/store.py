"""The artifact store: one root for everything the project writes, named by locations relative to it.

A location is a relative POSIX path under the root (``models/<key>``, ``assets/raw_news/<key>/news.parquet``):
manifests, lineage and the champion pointer hold locations, never a machine's absolute paths, so a store that
is copied or shared stays valid wherever it is read. The layout:

    assets/<stage>/<key>/   content-addressed step outputs (data frames, splits, tokens, scores, profiles)
    models/<key>/           model bundles (``variants/`` inside each)
    production/             the champion pointer and the promotion history
    drift_reports/<day>/    one folder per daily drift report
    dagster/manifests/      what the Dagster IO manager hands from asset to asset
    cache/, runs/, logs/    local only: downloads, training logs, the default SQLite prediction log

Writers build a location's file or folder locally (``path``) and then ``publish`` it; readers ``fetch`` it.
``ArtifactStore`` is a local folder, where both are no-ops. ``BucketStore`` keeps the same layout in a Google
Cloud Storage bucket with the local folder as its mirror: ``publish`` uploads, ``fetch`` downloads what is
missing or changed, so steps on different machines (workers with their own disks) share their results.
``fakenews_ml.environment.artifact_store`` decides which one is in use.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fakenews_ml.atomic import atomic_path, is_partial, swap_symlink, write_bytes
from fakenews_ml.errors import ChampionMoved, FakeNewsError

CHAMPION_LINK = "production/champion"
CHAMPION_POINTER = "production/champion.json"  # the bucket's pointer (a link cannot live in a bucket)
PROMOTIONS = "production/promotions.jsonl"


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
    """The local store: a folder."""

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

    # ----- the champion: a relative link, re-pointed in one rename ----------------------------------------

    def read_champion(self) -> str | None:
        """The champion's location (``models/<key>``), or None before the first promotion."""
        link = self.path(CHAMPION_LINK)
        if not link.is_symlink():
            return None
        target = Path(os.readlink(link))
        if target.is_absolute():  # a link written by an older version: it names this machine's path
            return self.location(target)
        return check_location(os.path.normpath(PurePosixPath(CHAMPION_LINK).parent / target.as_posix()))

    def write_champion(self, location: str, expected: str | None) -> None:
        """Point the champion at ``location`` if it is still ``expected`` (ChampionMoved otherwise). The check and
        the swap hold a lock, so of two concurrent promotions from the same champion only one wins."""
        with self._production_lock():
            current = self.read_champion()
            if current != expected:
                raise ChampionMoved(f"the champion is {current}, not {expected} as expected: another promotion won")
            self._link_champion(location)

    def _link_champion(self, location: str) -> None:
        link = self.path(CHAMPION_LINK)
        swap_symlink(link, os.path.relpath(self.path(location), link.parent))

    @contextlib.contextmanager
    def _production_lock(self):
        lock = self.path("production/.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def append_promotion(self, record: dict) -> None:
        with open(self.path(PROMOTIONS), "a") as history:  # one short line per append
            history.write(json.dumps(record) + "\n")

    def promotions(self) -> list[dict]:
        file = self.path(PROMOTIONS)
        if not file.exists():
            return []
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _md5(path: Path, cache: dict) -> str:
    """The base64 MD5 GCS reports for an object, of a local file (cached per size and mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in cache:
        digest = hashlib.md5()  # noqa: S324 - what GCS compares, not a security measure
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        cache[key] = base64.b64encode(digest.digest()).decode()
    return cache[key]


@dataclass(frozen=True)
class BucketStore(ArtifactStore):
    """The store in ``gs://bucket/prefix``, mirrored into the local ``root``. The champion is the object
    ``production/champion.json``, replaced under a generation-match precondition: of two concurrent promotions
    only one can win. Promotions are one object each under ``production/promotions/``."""

    bucket: str = ""
    prefix: str = ""
    client: object = field(default=None, compare=False, repr=False)
    _md5s: dict = field(default_factory=dict, compare=False, repr=False)

    def _name(self, location: str) -> str:
        return "/".join(part for part in (self.prefix.strip("/"), location) if part)

    def _bucket(self):
        return self.client.bucket(self.bucket)

    def uri(self, location: str) -> str:
        return f"gs://{self.bucket}/{self._name(location)}"

    def _remote_files(self, location: str) -> dict[str, object]:
        """``{location: blob}`` of the object at ``location`` or, for a folder, of every object under it."""
        name = self._name(location)
        exact = self._bucket().get_blob(name)
        if exact is not None:
            return {location: exact}
        blobs = self.client.list_blobs(self.bucket, prefix=name + "/")
        return {join(location, blob.name[len(name) + 1 :]): blob for blob in blobs}

    def fetch(self, location: str) -> Path:
        """Download what is missing or changed under ``location`` into the mirror, then its local path."""
        for where, blob in self._remote_files(location).items():
            local = self.path(where)
            if local.is_file() and _md5(local, self._md5s) == blob.md5_hash:
                continue
            with atomic_path(local) as tmp:
                blob.download_to_filename(str(tmp))
        return super().fetch(location)

    def publish(self, location: str) -> str:
        """Upload every local file under ``location`` that the bucket lacks or holds differently."""
        path = super().fetch(location)
        remote = self._remote_files(location)
        files = [path] if path.is_file() else [p for p in sorted(path.rglob("*")) if p.is_file()]
        for file in files:
            if any(is_partial(Path(part)) for part in file.relative_to(self.root).parts):
                continue  # an unfinished write of someone else's
            where = self.location(file)
            blob = remote.get(where)
            if blob is None or blob.md5_hash != _md5(file, self._md5s):
                self._bucket().blob(self._name(where)).upload_from_filename(str(file))
        return self.uri(location)

    # ----- the champion: an object replaced under a generation precondition --------------------------------

    def _pointer(self) -> tuple[str | None, int]:
        """(champion location, the pointer object's generation; 0 when there is none)."""
        blob = self._bucket().get_blob(self._name(CHAMPION_POINTER))
        if blob is None:
            return None, 0
        generation = int(blob.generation)  # read first: a download refreshes the properties from its headers
        return check_location(
            json.loads(blob.download_as_bytes(if_generation_match=generation))["location"]
        ), generation

    def read_champion(self) -> str | None:
        """The champion in the bucket; the local mirror's link follows it (for servers that watch the link)."""
        location, _ = self._pointer()
        if location is not None and location != super().read_champion():
            self.fetch(location)
            self._link_champion(location)
        return location

    def write_champion(self, location: str, expected: str | None) -> None:
        from google.api_core.exceptions import PreconditionFailed

        current, generation = self._pointer()
        if current != expected:
            raise ChampionMoved(f"the champion is {current}, not {expected} as expected: another promotion won")
        blob = self._bucket().blob(self._name(CHAMPION_POINTER))
        try:
            blob.upload_from_string(
                json.dumps({"location": location}), content_type="application/json", if_generation_match=generation
            )
        except PreconditionFailed:
            raise ChampionMoved(
                f"the champion pointer changed while promoting {location}: another promotion won"
            ) from None
        self._link_champion(location)

    def append_promotion(self, record: dict) -> None:
        name = f"production/promotions/{record['at']}-{record['version']}.json"
        write_bytes(self.path(name), json.dumps(record).encode())
        self.publish(name)

    def promotions(self) -> list[dict]:
        blobs = self.client.list_blobs(self.bucket, prefix=self._name("production/promotions/"))
        return sorted((json.loads(blob.download_as_bytes()) for blob in blobs), key=lambda r: r["at"])
