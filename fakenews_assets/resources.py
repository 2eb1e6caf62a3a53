"""Resources, chosen in one place (``build_resources``) from the environment.

- storage: JSON manifests under ``FAKENEWS_HOME`` by default; with ``FAKENEWS_GCS_BUCKET`` set, dagster-gcp's
  ``GCSPickleIOManager`` for the manifests and bundles uploaded to the bucket as plain files.
- W&B: dagster-wandb's ``wandb_resource`` (login + API client), offline unless ``WANDB_MODE=online`` and a
  real ``WANDB_API_KEY`` are given; the key is only ever passed as an environment-variable reference.
- compute: accelerator and precision, resolved by ``fakenews_ml.device`` (CUDA + bf16-mixed when present).
- log_store: the prediction log (SQLite under ``FAKENEWS_HOME`` unless ``FAKENEWS_PREDICTION_LOG_URL`` names
  another SQLAlchemy URL), read by the monitoring assets and sensors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dagster as dg
from dagster_gcp import GCSPickleIOManager, GCSResource
from pydantic import Field

from fakenews_ml import tracking
from fakenews_ml.environment import fakenews_home
from fakenews_ml.storage import upload_folder, upload_json

BUCKET_ENV = "FAKENEWS_GCS_BUCKET"
PREFIX_ENV = "FAKENEWS_GCS_PREFIX"
# wandb.login() insists on a key even offline; offline and disabled runs never send it anywhere.
WANDB_CLOUD_HOST = "https://api.wandb.ai"
OFFLINE_KEY = "offline-mode-placeholder-key-not-a-secret-000000"
WANDB_MODES = ("online", "offline", "disabled")


# ----- compute -------------------------------------------------------------------------------------------


class ComputeResource(dg.ConfigurableResource):
    """The device training runs on. ``auto``: CUDA when present (bf16-mixed), else CPU."""

    accelerator: str = Field("auto", description="auto, cpu or gpu")
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto = bf16-mixed on CUDA and bf16-capable CPUs, else 32-true"
    )
    num_threads: int | None = Field(None, description="torch CPU threads; empty = all cores")

    def train_fields(self) -> dict:
        return {"accelerator": self.accelerator, "precision": self.precision, "num_threads": self.num_threads}

    def describe(self) -> dict:
        from fakenews_ml.device import describe_device, resolve_precision

        return {
            **describe_device(),
            "accelerator": self.accelerator,
            "precision": resolve_precision(self.precision, self.accelerator),
        }


# ----- storage -------------------------------------------------------------------------------------------


class ManifestIOManager(dg.ConfigurableIOManager):
    """Stores each asset's manifest (a small dict of paths and fingerprints) as JSON: no pickles. The
    folder is ``FAKENEWS_HOME/dagster/manifests`` unless ``base_dir`` is set, resolved when the run starts."""

    base_dir: str | None = Field(None, description="Folder for manifests; empty = $FAKENEWS_HOME/dagster/manifests")

    def _path(self, key: dg.AssetKey, partition: str | None = None) -> Path:
        """``<root>/<asset>.json``; a partitioned asset keeps one per partition: ``<root>/<asset>/<key>.json``."""
        root = Path(self.base_dir) if self.base_dir else fakenews_home() / "dagster" / "manifests"
        path = root.joinpath(*key.path)
        return path / f"{partition}.json" if partition is not None else path.with_suffix(".json")

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        path = self._path(context.asset_key, context.asset_partition_key if context.has_asset_partitions else None)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
        partial.replace(path)
        context.add_output_metadata({"manifest": dg.MetadataValue.path(str(path))})

    def _read(self, key: dg.AssetKey, partition: str | None) -> dict:
        path = self._path(key, partition)
        if not path.exists():
            what = key.to_user_string() + (f" partition {partition}" if partition is not None else "")
            raise FileNotFoundError(f"no manifest for {what} at {path}: materialize it first")
        return json.loads(path.read_text())

    def load_input(self, context: dg.InputContext) -> dict:
        if not context.has_asset_partitions:
            return self._read(context.asset_key, None)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._read(context.asset_key, keys[0])
        return {key: self._read(context.asset_key, key) for key in keys}


class PredictionLogStore(dg.ConfigurableResource):
    """The prediction log (predictions and feedback labels) the API writes and the monitoring assets and
    sensors read. Empty ``url``: $FAKENEWS_PREDICTION_LOG_URL, else SQLite under FAKENEWS_HOME (read when
    opened, not when the code location loads)."""

    url: str | None = Field(
        None, description="SQLAlchemy URL; empty = $FAKENEWS_PREDICTION_LOG_URL or SQLite under FAKENEWS_HOME"
    )

    def open(self):
        """A ``PredictionLog``; use it as a context manager so its connections are closed."""
        from fakenews_ml.monitoring.prediction_log import PredictionLog

        return PredictionLog(self.url or None)


class ModelStore(dg.ConfigurableResource):
    """Where bundles are published. Locally they already live under ``FAKENEWS_HOME/models``: nothing to copy."""

    def publish_bundle(self, bundle_path: str) -> str:
        return Path(bundle_path).resolve().as_uri()

    def publish_champion(self, production: dict) -> str | None:
        return None


class GCSModelStore(ModelStore):
    """Uploads bundle folders file by file to ``gs://bucket/prefix/models/<name>`` and the champion pointer
    to ``gs://bucket/prefix/production/champion.json``."""

    gcs: GCSResource
    bucket: str
    prefix: str = "fakenews"

    def publish_bundle(self, bundle_path: str) -> str:
        return upload_folder(
            self.gcs.get_client(), self.bucket, f"{self.prefix}/models/{Path(bundle_path).name}", bundle_path
        )

    def publish_champion(self, production: dict) -> str | None:
        pointer = {k: production[k] for k in ("version", "champion_path", "serving_variant", "reason")}
        pointer["bundle_uri"] = f"gs://{self.bucket}/{self.prefix}/models/{Path(production['champion_path']).name}"
        return upload_json(self.gcs.get_client(), self.bucket, f"{self.prefix}/production/champion.json", pointer)


# ----- experiment tracking -------------------------------------------------------------------------------


@dataclass
class TrainingRun:
    """A W&B run that starts only if training actually happens (a reused bundle logs nothing)."""

    tracker: WandbTracker
    config: dict
    logger: object = None

    def start(self, key: str):
        self.logger = self.tracker.logger(f"train-{key}", self.config)
        return self.logger

    def finish(self, bundle: dict | None) -> dict:
        """Log the bundle (when training succeeded), close the run and describe it; {} when none started."""
        if self.logger is None:
            return {}
        try:
            info = {"mode": self.tracker.mode, **tracking.run_info(self.logger)}
            if bundle is not None and self.tracker.mode != "disabled":
                tracking.log_bundle(self.logger, bundle)
                tracking.save_run_info(bundle["bundle_path"], info)
                bundle["wandb_run"] = info
            return info
        finally:
            tracking.finish(self.logger)


@dataclass
class WandbTracker:
    mode: str
    project: str
    entity: str | None = None
    handle: dict = field(default_factory=dict)  # what dagster-wandb's resource returns: sdk, api, host

    def logger(self, name: str, config: dict):
        return tracking.wandb_logger(self.project, name, config, self.mode, fakenews_home() / "wandb", self.entity)

    def training_run(self, config: dict) -> TrainingRun:
        return TrainingRun(self, config)


@dg.resource(
    config_schema={
        "api_key": dg.Field(dg.StringSource, description="W&B API key (an env-var reference, never a literal secret)"),
        "host": dg.Field(str, default_value=WANDB_CLOUD_HOST),
        "mode": dg.Field(
            str, default_value="offline", description="online, offline (sync later with `wandb sync`) or disabled"
        ),
        "project": dg.Field(str, default_value="fakenews"),
        "entity": dg.Field(dg.Noneable(str), default_value=None),
    },
    description="Weights & Biases through dagster-wandb: login and API client, plus the run mode and project.",
)
def wandb_tracker(context: dg.InitResourceContext) -> WandbTracker:
    mode = context.resource_config["mode"]
    if mode not in WANDB_MODES:
        raise dg.Failure(f"W&B mode {mode!r} is not one of {WANDB_MODES}")
    # wandb.login() reads the mode from the environment: offline/disabled must be set before it runs.
    os.environ["WANDB_MODE"] = mode
    from dagster_wandb import (
        wandb_resource,  # imports wandb (seconds): only when a run needs it
    )

    handle = wandb_resource.resource_fn(context)
    return WandbTracker(
        mode=mode, project=context.resource_config["project"], entity=context.resource_config["entity"], handle=handle
    )


def wandb_config(env: Mapping[str, str]) -> dict:
    mode = (env.get("WANDB_MODE") or "offline").strip().lower()
    if mode == "dryrun":
        mode = "offline"
    has_key = bool(env.get("WANDB_API_KEY"))
    if mode == "online" and not has_key:
        raise ValueError("WANDB_MODE=online needs WANDB_API_KEY; unset WANDB_MODE to log offline")
    return {
        "api_key": {"env": "WANDB_API_KEY"} if has_key else OFFLINE_KEY,
        "mode": mode,
        "project": env.get("WANDB_PROJECT") or "fakenews",
        "entity": env.get("WANDB_ENTITY") or None,
    }


# ----- the one place that decides ------------------------------------------------------------------------


def build_resources(environ: Mapping[str, str] | None = None) -> dict:
    """Every resource the graph needs, chosen from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    resources = {
        "compute": ComputeResource(),
        "wandb": wandb_tracker.configured(wandb_config(env)),
        "log_store": PredictionLogStore(),
    }
    bucket = env.get(BUCKET_ENV)
    if bucket:
        prefix = (env.get(PREFIX_ENV) or "fakenews").strip("/")
        gcs = GCSResource(project=env.get("GOOGLE_CLOUD_PROJECT") or None)
        resources["io_manager"] = GCSPickleIOManager(gcs=gcs, gcs_bucket=bucket, gcs_prefix=f"{prefix}/dagster")
        resources["model_store"] = GCSModelStore(gcs=gcs, bucket=bucket, prefix=prefix)
    else:
        resources["io_manager"] = ManifestIOManager()
        resources["model_store"] = ModelStore()
    return resources
