"""Copy artifact folders to Google Cloud Storage as plain files (bundles stay bundles, never pickles)."""

from __future__ import annotations

import json
from pathlib import Path


def upload_folder(client, bucket: str, prefix: str, folder: Path | str) -> str:
    """Upload every file under ``folder`` to ``gs://bucket/prefix/<relative path>``; returns the folder URI.

    ``client`` is a ``google.cloud.storage.Client`` (or anything with the same ``bucket().blob()`` API).
    Hidden staging leftovers (``.name``) are skipped."""
    folder = Path(folder)
    target = client.bucket(bucket)
    prefix = prefix.strip("/")
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            target.blob(f"{prefix}/{relative.as_posix()}").upload_from_filename(str(path))
    return f"gs://{bucket}/{prefix}"


def upload_json(client, bucket: str, name: str, data: dict) -> str:
    client.bucket(bucket).blob(name).upload_from_string(
        json.dumps(data, indent=2, default=str), content_type="application/json"
    )
    return f"gs://{bucket}/{name}"
