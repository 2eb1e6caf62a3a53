"""What offline W&B runs hold before ``wandb sync`` publishes them: each run's group and job type, its summary,
and the artifacts it logged (files with their digests and where W&B will upload them from, metadata, aliases),
read from the run's ``.wandb`` file with wandb's own record reader."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ArtifactFile:
    digest: str  # base64 MD5, as W&B keeps it
    size: int
    local_path: str  # what `wandb sync` uploads


@dataclass
class OfflineArtifact:
    name: str
    type: str
    digest: str  # the artifact's: the same files give the same digest, hence the same version once synced
    aliases: list[str]
    metadata: dict
    files: dict[str, ArtifactFile]


@dataclass
class OfflineRun:
    path: Path
    id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    started_ns: int = 0
    finished: bool = False  # the exit record is written: the run is complete on disk
    summary: dict = field(default_factory=dict)
    artifacts: list[OfflineArtifact] = field(default_factory=list)


def _records(wandb_file: Path):
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(str(wandb_file))
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        yield record


def read_offline_run(run_dir: Path) -> OfflineRun:
    """The records of one ``offline-run-<time>-<id>`` folder."""
    run_dir = Path(run_dir)
    (wandb_file,) = run_dir.glob("run-*.wandb")
    run = OfflineRun(path=run_dir)
    for record in _records(wandb_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info = record.run
            run.id, run.name, run.group, run.job_type = info.run_id, info.display_name, info.run_group, info.job_type
            run.started_ns = info.start_time.seconds * 10**9 + info.start_time.nanos
        elif kind == "exit":
            run.finished = True
        elif kind == "summary":
            run.summary.update({item.key: json.loads(item.value_json) for item in record.summary.update})
        elif kind == "artifact":
            artifact = record.artifact
            run.artifacts.append(
                OfflineArtifact(
                    name=artifact.name,
                    type=artifact.type,
                    digest=artifact.digest,
                    aliases=list(artifact.aliases),
                    metadata=json.loads(artifact.metadata or "{}"),
                    files={
                        entry.path: ArtifactFile(entry.digest, entry.size, entry.local_path)
                        for entry in artifact.manifest.contents
                    },
                )
            )
    return run


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under a W&B folder (``<dir>/wandb/offline-run-*`` or ``<dir>/offline-run-*``), oldest
    first (the folders are named after their start time, to the second: ``wandb sync`` publishes them in that
    order, so the alias logged last is the one that stands)."""
    wandb_dir = Path(wandb_dir)
    folders = sorted(wandb_dir.glob("offline-run-*")) or sorted(wandb_dir.glob("wandb/offline-run-*"))
    return sorted((read_offline_run(folder) for folder in folders), key=lambda run: run.started_ns)


def finished_offline_runs(wandb_dir: Path, timeout_s: float = 30.0) -> list[OfflineRun]:
    """``offline_runs`` once every run is complete on disk: wandb's service may still be writing the last
    records of a run for a moment after ``finish()`` returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = offline_runs(wandb_dir)
        if all(run.finished for run in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)
