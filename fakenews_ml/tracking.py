"""Weights & Biases for training runs: a Lightning ``WandbLogger``, the bundle logged as a reference
artifact (no copy of the weights), and the run's id/URL for lineage. The mode (online / offline /
disabled) is decided by the caller; offline runs can be synced later with ``wandb sync``."""

from __future__ import annotations

import json
from pathlib import Path


def wandb_logger(project: str, name: str, config: dict, mode: str, save_dir: Path | str, entity: str | None = None):
    from lightning.pytorch.loggers import WandbLogger

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        name=name,
        entity=entity,
        config=config,
        mode=mode,
        save_dir=str(save_dir),
        log_model=False,
        reinit="finish_previous",
    )


def _flat(prefix: str, metrics: dict) -> dict:
    return {f"{prefix}/{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_bundle(logger, bundle: dict) -> None:
    """Held-out metrics into the run summary, and the bundle folder as a (reference) model artifact."""
    import wandb

    run = logger.experiment
    run.summary.update(
        {
            **_flat("test", bundle["metrics"]["test"]),
            **_flat("val", bundle["metrics"]["val"]),
            "threshold": bundle["threshold"],
            "bundle_version": bundle["version"],
        }
    )
    artifact = wandb.Artifact(
        f"fakenews-bundle-{bundle['cache_key'] or bundle['version']}",
        type="model",
        metadata={"version": bundle["version"], "weights_sha256": bundle["weights_sha256"]},
    )
    artifact.add_reference(Path(bundle["bundle_path"]).resolve().as_uri(), checksum=False)
    run.log_artifact(artifact)


def run_info(logger) -> dict:
    run = logger.experiment
    return {
        "id": getattr(run, "id", None),
        "name": getattr(run, "name", None),
        "url": getattr(run, "url", None),
        "project": getattr(run, "project", None),
        "dir": getattr(run, "dir", None),
    }


RUN_FILE = "wandb_run.json"


def save_run_info(bundle_path: Path | str, info: dict) -> None:
    """Remember which W&B run trained a bundle (shown again when the bundle is reused)."""
    (Path(bundle_path) / RUN_FILE).write_text(json.dumps(info, indent=2, default=str))


def finish(logger) -> None:
    logger.experiment.finish()
