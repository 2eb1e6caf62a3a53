"""Turn a source URI into a local file: local paths as they are, http(s):// and gs:// through a
checksummed cache under ``FAKENEWS_HOME``. Downloads land in a temporary file and are renamed into place
only when complete, so a failed download never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from fakenews_ml.atomic import atomic_path, write_json
from fakenews_ml.environment import download_cache_dir
from fakenews_ml.errors import DataSourceError

CHUNK = 1 << 20


@dataclass(frozen=True)
class ResolvedSource:
    uri: str
    path: Path
    sha256: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(uri: str, progress: bool = True) -> ResolvedSource:
    """A local, verified copy of ``uri``. Remote copies are fetched once and checked on every reuse."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        path = _cached(uri, lambda tmp: _download_http(uri, tmp, progress))
    elif parsed.scheme == "gs":
        path = _cached(uri, lambda tmp: _download_gcs(parsed.netloc, parsed.path.lstrip("/"), tmp))
    elif parsed.scheme in ("", "file"):
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise DataSourceError(
                f"file:// URI with a remote host is not supported: {uri!r}; use file:///absolute/path"
            )
        # file:// URIs are percent-encoded ("my%20data.csv"); plain paths are taken literally.
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else uri).expanduser()
        if not path.is_file():
            raise DataSourceError(f"source file not found: {path} (from {uri!r})")
        return ResolvedSource(uri, path.resolve(), sha256_file(path))
    else:
        raise DataSourceError(
            f"unsupported source scheme {parsed.scheme!r} in {uri!r}: use a path, http(s):// or gs://"
        )
    return ResolvedSource(uri, path, _manifest(path)["sha256"])


def _cache_slot(uri: str) -> Path:
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    name = Path(urlparse(uri).path).name or "download"
    return download_cache_dir() / key / name


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _manifest(path: Path) -> dict:
    manifest = _manifest_path(path)
    try:
        data = json.loads(manifest.read_text())
        str(data["sha256"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataSourceError(
            f"download manifest {manifest} is unreadable ({exc}); delete {path.parent} to download it again"
        ) from None
    return data


def _cached(uri: str, fetch) -> Path:
    path = _cache_slot(uri)
    manifest = _manifest_path(path)
    if path.exists() and manifest.exists():
        recorded = _manifest(path)["sha256"]
        actual = sha256_file(path)
        if actual != recorded:
            raise DataSourceError(
                f"cached copy of {uri} is corrupt: sha256 {actual[:12]}… != recorded {recorded[:12]}…; "
                f"delete {path.parent} to download it again"
            )
        return path
    try:
        with atomic_path(path) as tmp:
            fetch(tmp)
            digest = sha256_file(tmp)
            # The manifest goes in first: a data file is never in place without the checksum that guards it.
            write_json(manifest, {"uri": uri, "sha256": digest, "bytes": tmp.stat().st_size})
    except DataSourceError:
        raise
    except Exception as exc:  # network, auth, disk: one clear message, nothing left behind
        raise DataSourceError(f"could not download {uri}: {exc}") from exc
    finally:
        if not path.exists():  # failed: no orphan manifest, no empty slot folder
            manifest.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
    return path


def _download_http(url: str, target: Path, progress: bool) -> None:
    import requests
    from tqdm.auto import tqdm

    with requests.get(url, stream=True, timeout=60) as response:
        if response.status_code != 200:
            raise DataSourceError(f"could not download {url}: HTTP {response.status_code}")
        total = int(response.headers.get("content-length") or 0) or None
        with (
            open(target, "wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"download {Path(target).parent.name}",
                disable=not progress,
            ) as bar,
        ):
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _download_gcs(bucket: str, blob_name: str, target: Path) -> None:
    from google.cloud import storage

    if not bucket or not blob_name:
        raise DataSourceError(f"gs:// URI needs a bucket and an object name, got gs://{bucket}/{blob_name}")
    storage.Client().bucket(bucket).blob(blob_name).download_to_filename(str(target))
