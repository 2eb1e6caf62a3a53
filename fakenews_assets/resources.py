"""Resources, chosen in one place (``build_resources``) from the environment.

- storage: every asset's manifest as JSON (``ManifestIOManager``: typed, never a pickle) beside the artifact
  store that holds the files the manifests name (``fakenews_ml.environment.artifact_store``).
- W&B: dagster-wandb's ``wandb_resource`` (login + API client), offline unless ``WANDB_MODE=online`` and a
  real ``WANDB_API_KEY`` are given; the key is only ever passed as an environment-variable reference.
- compute: accelerator and precision, resolved by ``fakenews_ml.device`` (CUDA + bf16-mixed when present).
- log_store: the prediction log (SQLite under ``FAKENEWS_HOME`` unless ``FAKENEWS_PREDICTION_LOG_URL`` names
  another SQLAlchemy URL), read by the monitoring assets and sensors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from fakenews_ml.atomic import write_text
from fakenews_ml.environment import WANDB_MODES, artifact_store, wandb_settings
from fakenews_ml.manifests import Manifest, dump_manifest, load_manifest
from fakenews_ml.store import join
from fakenews_ml.tracking import WandbSettings

# wandb.login() insists on a key even offline; offline and disabled runs never send it anywhere.
WANDB_CLOUD_HOST = "https://api.wandb.ai"
OFFLINE_KEY = "offline-mode-placeholder-key-not-a-secret-000000"
MANIFESTS = "dagster/manifests"  # the IO manager's folder in the artifact store


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
    """Stores each asset's manifest (a typed model of locations and fingerprints) as JSON, never a pickle, in the
    artifact store's ``dagster/manifests/`` (a bucket when the store is one: a step on another machine reads
    it there), or in ``base_dir`` when that is set."""

    base_dir: str | None = Field(None, description="A local folder for manifests; empty = the artifact store")

    def _location(self, key: dg.AssetKey, partition: str | None = None) -> str:
        """``<asset>.json``; a partitioned asset keeps one per partition: ``<asset>/<partition>.json``."""
        name = "/".join(key.path)
        return f"{name}/{partition}.json" if partition is not None else f"{name}.json"

    def _local(self, location: str) -> Path:
        return Path(self.base_dir) / location if self.base_dir else artifact_store().path(join(MANIFESTS, location))

    def handle_output(self, context: dg.OutputContext, obj: Manifest) -> None:
        partition = context.asset_partition_key if context.has_asset_partitions else None
        location = self._location(context.asset_key, partition)
        write_text(self._local(location), dump_manifest(obj))
        if not self.base_dir:
            artifact_store().publish(join(MANIFESTS, location))
        context.add_output_metadata({"manifest": dg.MetadataValue.path(join(MANIFESTS, location))})

    def _read(self, key: dg.AssetKey, partition: str | None) -> Manifest:
        location = self._location(key, partition)
        what = key.to_user_string() + (f" partition {partition}" if partition is not None else "")
        try:
            path = self._local(location) if self.base_dir else artifact_store().fetch(join(MANIFESTS, location))
        except FileNotFoundError:
            path = self._local(location)
        if not path.exists():
            raise FileNotFoundError(f"no manifest for {what} at {location}: materialize it first")
        try:
            return load_manifest(path.read_text())
        except ValueError as problem:  # written by an older version, or edited by hand
            raise ValueError(
                f"the manifest of {what} at {path} is not readable ({problem}): materialize it again"
            ) from None

    def load_input(self, context: dg.InputContext) -> Manifest | dict[str, Manifest]:
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


# ----- experiment tracking -------------------------------------------------------------------------------


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
def wandb_tracker(context: dg.InitResourceContext) -> WandbSettings:
    mode = context.resource_config["mode"]
    if mode not in WANDB_MODES:
        raise dg.Failure(f"W&B mode {mode!r} is not one of {WANDB_MODES}")
    # wandb.login() reads the mode from the environment: offline/disabled must be set before it runs.
    os.environ["WANDB_MODE"] = mode
    from dagster_wandb import wandb_resource  # imports wandb (seconds): only when a run needs it

    wandb_resource.resource_fn(context)  # login (a placeholder key offline: nothing is sent)
    return WandbSettings(
        mode=mode, project=context.resource_config["project"], entity=context.resource_config["entity"]
    )


def wandb_config(env: Mapping[str, str]) -> dict:
    """The resource's config from the environment (``fakenews_ml.environment.wandb_settings`` decides)."""
    settings = wandb_settings(env)
    return {
        "api_key": {"env": "WANDB_API_KEY"} if env.get("WANDB_API_KEY") else OFFLINE_KEY,
        "mode": settings.mode,
        "project": settings.project,
        "entity": settings.entity,
    }


# ----- the one place that decides ------------------------------------------------------------------------


def build_resources(environ: Mapping[str, str] | None = None) -> dict:
    """Every resource the graph needs, chosen from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    resources = {
        "compute": ComputeResource(),
        "wandb": wandb_tracker.configured(wandb_config(env)),
        "log_store": PredictionLogStore(),
        "io_manager": ManifestIOManager(),
    }
    return resources
