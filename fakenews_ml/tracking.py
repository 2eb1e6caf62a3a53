"""Weights & Biases for training runs: a Lightning ``WandbLogger`` that starts only when training actually
happens, the bundle logged as a model artifact, and the run's id/URL kept with the bundle. The mode (online /
offline / disabled) is decided by the caller (the CLI's ``--wandb`` or the Dagster resource); offline runs
are synced later with ``wandb sync``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fakenews_ml.atomic import write_text
from fakenews_ml.manifests import TrainedModel

RUN_FILE = "wandb_run.json"


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


def _flat(prefix: str, metrics) -> dict:
    values = metrics.model_dump() if metrics is not None else {}
    return {f"{prefix}/{k}": v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def log_bundle(logger, bundle: TrainedModel, bundle_path: Path) -> None:
    """Held-out metrics into the run summary, and the bundle folder as a (reference) model artifact."""
    import wandb

    run = logger.experiment
    run.summary.update(
        {
            **_flat("test", bundle.metrics.test),
            **_flat("val", bundle.metrics.val),
            "threshold": bundle.threshold,
            "bundle_version": bundle.version,
        }
    )
    artifact = wandb.Artifact(
        f"fakenews-bundle-{bundle.cache_key}",
        type="model",
        metadata={"version": bundle.version, "weights_sha256": bundle.weights_sha256},
    )
    artifact.add_reference(bundle_path.resolve().as_uri(), checksum=False)
    run.log_artifact(artifact)


def run_info(logger) -> dict:
    run = logger.experiment
    return {name: getattr(run, name, None) for name in ("id", "name", "url", "project")}


@dataclass
class WandbSettings:
    mode: str  # online, offline or disabled
    project: str = "fakenews"
    entity: str | None = None
    save_dir: Path | None = None  # default: <artifact store>/wandb


@dataclass
class TrainingRun:
    """A W&B run that starts only if training actually happens (a reused bundle logs nothing)."""

    settings: WandbSettings
    config: dict
    logger: object = None

    def start(self, key: str):
        from fakenews_ml.environment import fakenews_home

        s = self.settings
        self.logger = wandb_logger(
            s.project, f"train-{key}", self.config, s.mode, s.save_dir or fakenews_home() / "wandb", s.entity
        )
        return self.logger

    def finish(self, bundle: TrainedModel | None, bundle_path: Path | None = None) -> dict:
        """Log the bundle (when training succeeded), close the run and describe it; {} when none started."""
        if self.logger is None:
            return {}
        try:
            info = {"mode": self.settings.mode, **run_info(self.logger)}
            if bundle is not None and bundle_path is not None and self.settings.mode != "disabled":
                log_bundle(self.logger, bundle, bundle_path)
                write_text(bundle_path / RUN_FILE, json.dumps(info, indent=2, default=str))
            return info
        finally:
            self.logger.experiment.finish()
