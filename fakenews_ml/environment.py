"""What the environment decides, read at call time (never at import), in one place: where the project writes
(``FAKENEWS_HOME``, the artifact store), the prediction log, and the loop's knobs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from fakenews_ml.errors import FakeNewsError
from fakenews_ml.store import ArtifactStore
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


def artifact_store() -> ArtifactStore:
    """The store every stage writes to and reads from: the ``FAKENEWS_HOME`` folder."""
    return ArtifactStore(fakenews_home())


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


def download_cache_dir() -> Path:
    return home_path("cache", "downloads", "")


def prediction_log_url() -> str:
    return os.environ.get("FAKENEWS_PREDICTION_LOG_URL") or f"sqlite:///{home_path('logs', 'predictions.sqlite')}"


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
