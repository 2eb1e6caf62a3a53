"""Where the project writes: every default path lives under one root, ``FAKENEWS_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path.home() / ".fakenews"


def fakenews_home() -> Path:
    """The root of everything the project writes by default (read at call time, never at import)."""
    return Path(os.environ.get("FAKENEWS_HOME", DEFAULT_HOME)).expanduser().resolve()


def home_path(*parts: str) -> Path:
    """A path under ``FAKENEWS_HOME``; parent folders are created on demand."""
    path = fakenews_home().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def download_cache_dir() -> Path:
    return home_path("cache", "downloads", "")


def bundles_dir() -> Path:
    return home_path("models", "")


def production_link() -> Path:
    """The promoted champion; a symlink swapped atomically on promotion."""
    return home_path("production", "champion")


def prediction_log_url() -> str:
    return os.environ.get("FAKENEWS_PREDICTION_LOG_URL") or f"sqlite:///{home_path('logs', 'predictions.sqlite')}"


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
