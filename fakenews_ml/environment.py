"""What the environment decides, read at call time (never at import), in one place: where the project writes
(``FAKENEWS_HOME``, the artifact store), the prediction log, and the loop's knobs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

from fakenews_ml.errors import FakeNewsError
from fakenews_ml.store import ArtifactStore, BucketStore
from fakenews_ml.tracking import WandbSettings

DEFAULT_HOME = Path.home() / ".fakenews"


def fakenews_home() -> Path:
    """The root of everything the project writes by default (read at call time, never at import)."""
    return Path(os.environ.get("FAKENEWS_HOME", DEFAULT_HOME)).expanduser().resolve()


def home_path(*parts: str) -> Path:
    """A path under ``FAKENEWS_HOME``; parent folders are created on demand."""
    path = fakenews_home().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


STORE_ENV = "FAKENEWS_STORE"
BUCKET_ENV, PREFIX_ENV = "FAKENEWS_GCS_BUCKET", "FAKENEWS_GCS_PREFIX"  # the older spelling of a gs:// store


def store_uri(environ: Mapping[str, str] | None = None) -> str | None:
    """The shared store's ``gs://bucket/prefix`` (``FAKENEWS_STORE``, or ``FAKENEWS_GCS_BUCKET`` and
    ``FAKENEWS_GCS_PREFIX``), or None for a store that is just the local ``FAKENEWS_HOME`` folder."""
    env = os.environ if environ is None else environ
    uri = (env.get(STORE_ENV) or "").strip()
    if not uri and env.get(BUCKET_ENV):
        uri = f"gs://{env[BUCKET_ENV].strip()}/{(env.get(PREFIX_ENV) or 'fakenews').strip('/')}"
    if not uri:
        return None
    if not uri.startswith("gs://") or not uri[5:].split("/")[0]:
        raise FakeNewsError(f"{STORE_ENV}={uri!r} is not a gs://bucket[/prefix] URI (unset it for a local store)")
    return uri.rstrip("/")


def artifact_store() -> ArtifactStore:
    """The store every stage writes to and reads from: the ``FAKENEWS_HOME`` folder, or a bucket
    (``FAKENEWS_STORE=gs://bucket/prefix``) mirrored into that folder."""
    uri = store_uri()
    if uri is None:
        return ArtifactStore(fakenews_home())
    bucket, _, prefix = uri[5:].partition("/")
    return _bucket_store(bucket, prefix, str(fakenews_home()), os.environ.get("STORAGE_EMULATOR_HOST", ""))


@functools.cache
def _bucket_store(bucket: str, prefix: str, mirror: str, emulator: str) -> BucketStore:
    """One client per bucket and process (``emulator`` is in the key: a test may start its own)."""
    from google.cloud import storage

    # STORAGE_EMULATOR_HOST points the client at an emulator with anonymous credentials; otherwise the
    # application default credentials are used.
    client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or ("emulated" if emulator else None))
    return BucketStore(Path(mirror), bucket=bucket, prefix=prefix, client=client)


WANDB_MODES = ("online", "offline", "disabled")


def wandb_settings(environ: Mapping[str, str] | None = None) -> WandbSettings:
    """W&B from ``WANDB_MODE`` (default offline: nothing leaves the machine; ``dryrun`` means offline),
    ``WANDB_PROJECT``, ``WANDB_ENTITY``. Online needs ``WANDB_API_KEY``, read by wandb itself, never here."""
    env = os.environ if environ is None else environ
    mode = (env.get("WANDB_MODE") or "offline").strip().lower()
    mode = "offline" if mode == "dryrun" else mode
    if mode not in WANDB_MODES:
        raise FakeNewsError(f"WANDB_MODE={mode!r} is not one of {', '.join(WANDB_MODES)}")
    if mode == "online" and not env.get("WANDB_API_KEY"):
        raise FakeNewsError("WANDB_MODE=online needs WANDB_API_KEY; unset WANDB_MODE to log offline")
    return WandbSettings(
        mode=mode, project=env.get("WANDB_PROJECT") or "fakenews", entity=env.get("WANDB_ENTITY") or None
    )


OPTUNA_STORAGE_ENV = "FAKENEWS_OPTUNA_STORAGE"


def study_storage_url(instance_default: str | None = None) -> str:
    """Where hyperparameter studies live (a SQLAlchemy URL): ``FAKENEWS_OPTUNA_STORAGE`` when set, else
    ``instance_default`` (derived from the Dagster instance by the caller), else SQLite in the artifact store."""
    explicit = os.environ.get(OPTUNA_STORAGE_ENV, "").strip()
    return explicit or instance_default or f"sqlite:///{home_path('optuna', 'studies.db')}"


def download_cache_dir() -> Path:
    return home_path("cache", "downloads", "")


def prediction_log_url() -> str:
    return os.environ.get("FAKENEWS_PREDICTION_LOG_URL") or f"sqlite:///{home_path('logs', 'predictions.sqlite')}"


DASHBOARD_URL_ENV = "FAKENEWS_DASHBOARD_URL"


def dashboard_url() -> str:
    """Where the Streamlit dashboard answers (``FAKENEWS_DASHBOARD_URL``): Dagster metadata links to its views."""
    return (os.environ.get(DASHBOARD_URL_ENV, "").strip() or "http://127.0.0.1:8501").rstrip("/")


API_TOKEN_ENV = "FAKENEWS_API_TOKEN"


def api_token() -> str | None:
    """The API's shared secret for ``POST /feedback`` (``FAKENEWS_API_TOKEN``), or None when unset."""
    return os.environ.get(API_TOKEN_ENV, "").strip() or None


RETRAIN_COOLDOWN_ENV = "FAKENEWS_RETRAIN_COOLDOWN_HOURS"
DRIFT_EVERY_N_ENV = "FAKENEWS_DRIFT_EVERY_N"


def _env_number(name: str, default: float, kind: type, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be at least {minimum}")
    return value


def retrain_cooldown_hours() -> float:
    """Least time between two drift-triggered retrains (``FAKENEWS_RETRAIN_COOLDOWN_HOURS``, default 24)."""
    return _env_number(RETRAIN_COOLDOWN_ENV, 24.0, float, 0.0)


def drift_every_n() -> int:
    """New predictions that trigger a drift report (``FAKENEWS_DRIFT_EVERY_N``, default 500)."""
    return _env_number(DRIFT_EVERY_N_ENV, 500, int, 1)


RETRAIN_RUN_CONFIG_ENV = "FAKENEWS_RETRAIN_RUN_CONFIG"


def retrain_run_config() -> dict:
    """Run config for drift-triggered retrains: the YAML/JSON file ``FAKENEWS_RETRAIN_RUN_CONFIG`` names (the
    launchpad's format: ``ops: {trained_model: {config: {...}}}``), read at each tick; unset = the defaults."""
    import yaml

    name = os.environ.get(RETRAIN_RUN_CONFIG_ENV, "").strip()
    if not name:
        return {}
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{RETRAIN_RUN_CONFIG_ENV}={name}: no such file")
    try:
        value = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as problem:
        raise ValueError(f"{RETRAIN_RUN_CONFIG_ENV}={name}: not valid YAML or JSON ({problem})") from None
    if not isinstance(value, dict):
        raise TypeError(f"{RETRAIN_RUN_CONFIG_ENV}={name}: expected a mapping (ops: ..., resources: ...)")
    return value
