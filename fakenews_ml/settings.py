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
