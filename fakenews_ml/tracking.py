"""Weights & Biases for training runs, hyperparameter trials and promotions.

- ``TrainingRun``: a Lightning ``WandbLogger`` that starts only when training actually happens; a trial's run
  carries its study as the W&B ``group`` (all trials of a search are one group).
- ``log_bundle``: the bundle's files as a W&B model artifact, with its metrics and lineage as metadata. Every
  bundle is a version of one artifact, ``trained_model``, named after the asset that makes bundles (the
  convention of dagster-wandb's IO manager), so an alias names one bundle at a time.
- ``mirror_promotion``: the promoted bundle's artifact logged again, with the ``champion`` alias. The same files
  give the same digest, so W&B adds the alias to the version logged at training: the previous champion stays a
  version, and a rollback (promoting an older bundle again) moves the alias back.

Files are added with W&B's ``immutable`` policy: a bundle is a content-addressed folder whose files are never
rewritten, so W&B records them where they are instead of copying each bundle into its staging area. The mode
(online / offline / disabled) is decided by the caller (the CLI's ``--wandb`` or the Dagster resource); an
offline run directory (under the store's ``wandb/``) holds the run, its artifacts' manifests, metadata and
aliases, and ``wandb sync`` uploads the files from the bundles later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fakenews_ml.atomic import write_text
from fakenews_ml.manifests import TrainedModel

RUN_FILE = "wandb_run.json"
MODEL_ARTIFACT = "trained_model"
MODEL_TYPE = "model"
CHAMPION_ALIAS = "champion"
TRAIN_JOB, TRIAL_JOB, PROMOTION_JOB = "train", "hyperparameter-trial", "promotion"
# Written into a bundle folder after training (serving variants, their parity report, this module's record):
# never part of its artifact, so the files logged at promotion are the files logged at training.
ADDED_AFTER_TRAINING = frozenset({"variants", "quantization.json", RUN_FILE})


def wandb_logger(
    project: str,
    name: str,
    config: dict,
    mode: str,
    save_dir: Path | str,
    entity: str | None = None,
    group: str | None = None,
    job_type: str = TRAIN_JOB,
):
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
        group=group,
        job_type=job_type,
    )


def read_json(bundle_path: Path, name: str) -> dict:
    """A bundle's ``<name>.json`` ({} when absent). Read here rather than through ``fakenews_ml.bundle``: every
    stage reaches this module (through ``fakenews_ml.environment``), and the bundle module would bring the
    model code into every stage's code version."""
    file = Path(bundle_path) / f"{name}.json"
    return json.loads(file.read_text()) if file.exists() else {}


def _flat(prefix: str, metrics) -> dict:
    values = metrics.model_dump() if metrics is not None else {}
    return {f"{prefix}/{k}": v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def artifact_files(bundle_path: Path) -> list[str]:
    """The bundle's files as training wrote them (relative POSIX paths), in a stable order."""
    root = Path(bundle_path)
    files = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if parts[0] in ADDED_AFTER_TRAINING or any(part.startswith(".") for part in parts):
            continue
        if path.is_file():
            files.append("/".join(parts))
    return files


def artifact_metadata(bundle_path: Path) -> dict:
    """What W&B shows beside the files: version, threshold, configs, metrics and lineage."""
    meta = read_json(bundle_path, "bundle")
    lineage = read_json(bundle_path, "lineage")
    return {
        "version": meta["version"],
        "cache_key": lineage.get("cache_key"),
        "weights_sha256": meta["weights_sha256"],
        "threshold": meta["threshold"],
        "model_config": meta.get("model_config", {}),
        "train_config": meta.get("train_config", {}),
        "metrics": read_json(bundle_path, "metrics"),
        "lineage": lineage,
    }


def bundle_artifact(bundle_path: Path, files: list[str], extra_metadata: dict | None = None):
    import wandb

    artifact = wandb.Artifact(
        MODEL_ARTIFACT,
        type=MODEL_TYPE,
        description="A fakenews model bundle (safetensors weights, tokenizer, configs, metrics, lineage)",
        metadata={**artifact_metadata(bundle_path), **(extra_metadata or {})},
    )
    for name in files:
        artifact.add_file(str(Path(bundle_path) / name), name=name, policy="immutable")
    return artifact


def _cache_alias(bundle_path: Path) -> list[str]:
    key = read_json(bundle_path, "lineage").get("cache_key")
    return [f"key-{key}"] if key else []


def log_bundle(logger, bundle: TrainedModel, bundle_path: Path, aliases: tuple[str, ...] = ()) -> dict:
    """Held-out metrics into the run summary, and the bundle's files as a version of the model artifact."""
    run = logger.experiment
    run.summary.update(
        {
            **_flat("test", bundle.metrics.test),
            **_flat("val", bundle.metrics.val),
            "threshold": bundle.threshold,
            "bundle_version": bundle.version,
        }
    )
    files = artifact_files(bundle_path)
    artifact = bundle_artifact(bundle_path, files)
    names = [*_cache_alias(bundle_path), *aliases]
    run.log_artifact(artifact, aliases=names)
    return {"name": MODEL_ARTIFACT, "type": MODEL_TYPE, "digest": artifact.digest, "aliases": names, "files": files}


def run_info(run) -> dict:
    return {name: getattr(run, name, None) for name in ("id", "name", "url", "project", "group", "job_type")}


@dataclass
class WandbSettings:
    mode: str  # online, offline or disabled
    project: str = "fakenews"
    entity: str | None = None
    save_dir: Path | None = None  # default: <artifact store>/wandb

    def directory(self) -> Path:
        from fakenews_ml.environment import fakenews_home

        return Path(self.save_dir) if self.save_dir else fakenews_home() / "wandb"


@dataclass
class TrainingRun:
    """A W&B run that starts only if training actually happens (a reused bundle logs nothing). ``group`` and
    ``job_type`` place it (a search's trials share their study's group); ``aliases`` go on the bundle's
    artifact."""

    settings: WandbSettings
    config: dict
    logger: object = None
    name: str | None = None
    group: str | None = None
    job_type: str = TRAIN_JOB
    aliases: tuple[str, ...] = ()

    def start(self, key: str):
        s = self.settings
        self.logger = wandb_logger(
            s.project,
            self.name or f"train-{key}",
            self.config,
            s.mode,
            s.directory(),
            s.entity,
            group=self.group,
            job_type=self.job_type,
        )
        return self.logger

    def summarize(self, values: dict) -> None:
        """Add to the run's summary (a trial's outcome); nothing when no run started."""
        if self.logger is not None:
            self.logger.experiment.summary.update(values)

    def finish(self, bundle: TrainedModel | None, bundle_path: Path | None = None) -> dict:
        """Log the bundle (when training succeeded), close the run and describe it; {} when none started."""
        if self.logger is None:
            return {}
        try:
            info = {"mode": self.settings.mode, **run_info(self.logger.experiment)}
            if bundle is not None and bundle_path is not None and self.settings.mode != "disabled":
                info["artifact"] = log_bundle(self.logger, bundle, bundle_path, self.aliases)
                write_text(bundle_path / RUN_FILE, json.dumps(info, indent=2, default=str))
            return info
        finally:
            self.logger.experiment.finish()


def _files_logged_at_training(bundle_path: Path) -> list[str]:
    """The files the training run logged (so the digest matches), else the bundle's training files."""
    recorded = (read_json(bundle_path, "wandb_run").get("artifact") or {}).get("files") or []
    if recorded and all((Path(bundle_path) / name).is_file() for name in recorded):
        return list(recorded)
    return artifact_files(bundle_path)


def mirror_promotion(
    settings: WandbSettings,
    bundle_path: Path,
    *,
    previous: str | None = None,
    reason: str = "",
    aliases: tuple[str, ...] = (),
) -> dict:
    """Put the ``champion`` alias on the promoted bundle's artifact, in a short run of its own (job type
    ``promotion``); {} when W&B is disabled. ``previous`` is the former champion's location (it stays a version)."""
    if settings.mode == "disabled":
        return {}
    import wandb

    bundle_path = Path(bundle_path)
    version = read_json(bundle_path, "bundle")["version"]
    directory = settings.directory()
    directory.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=settings.project,
        entity=settings.entity,
        mode=settings.mode,
        dir=str(directory),
        name=f"promote-{version}",
        job_type=PROMOTION_JOB,
        config={"champion": version, "previous": previous, "reason": reason},
        reinit="finish_previous",
    )
    try:
        recorded = (read_json(bundle_path, "wandb_run").get("artifact") or {}).get("digest")
        artifact = bundle_artifact(
            bundle_path,
            _files_logged_at_training(bundle_path),
            {"promotion": {"previous": previous, "reason": reason}},
        )
        names = [CHAMPION_ALIAS, *_cache_alias(bundle_path), *aliases]
        run.log_artifact(artifact, aliases=names)
        return {
            "mode": settings.mode,
            **run_info(run),
            "artifact": MODEL_ARTIFACT,
            "digest": artifact.digest,
            "aliases": names,
            "same_version_as_training": recorded == artifact.digest if recorded else None,
        }
    finally:
        run.finish()
