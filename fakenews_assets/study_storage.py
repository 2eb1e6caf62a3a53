"""Where hyperparameter studies live when the asset graph runs them: beside the Dagster instance's own
storage, so every worker that shares the instance shares the studies.

Read from the instance's configuration file, ``$DAGSTER_HOME/dagster.yaml`` (Dagster's documented format;
values may be ``{env: NAME}`` references): with Postgres storage (dagster-postgres' ``postgres_url`` or
``postgres_db``), the same database, in a schema of its own (``optuna``: Optuna and Dagster both keep a table
named ``alembic_version``); with SQLite storage, a file in the instance's storage folder. No DAGSTER_HOME (a
temporary instance): None, and the caller falls back to the artifact store. ``FAKENEWS_OPTUNA_STORAGE``
overrides all of it (``fakenews_ml.environment.study_storage_url``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

import yaml

from fakenews_ml.errors import FakeNewsError
from fakenews_ml.search.storage import with_search_path

SCHEMA = "optuna"
SQLITE_FILE = ("optuna", "studies.db")  # inside the instance's storage folder, apart from Dagster's *.db files


def _value(raw, env: Mapping[str, str], what: str):
    """A config value, with an ``{env: NAME}`` reference resolved as Dagster resolves it."""
    if isinstance(raw, Mapping) and set(raw) == {"env"}:
        if raw["env"] not in env:
            raise FakeNewsError(f"dagster.yaml: {what} names the environment variable {raw['env']}, which is unset")
        return env[raw["env"]]
    return raw


def postgres_url(config: Mapping, env: Mapping[str, str]) -> str:
    """The URL dagster-postgres connects to for this storage config (its ``pg_url_from_config`` scheme)."""
    if config.get("postgres_url"):
        return str(_value(config["postgres_url"], env, "postgres_url"))
    db = {key: _value(value, env, f"postgres_db.{key}") for key, value in (config.get("postgres_db") or {}).items()}
    missing = [key for key in ("username", "password", "hostname", "db_name") if not db.get(key)]
    if missing:
        raise FakeNewsError(f"dagster.yaml: postgres_db lacks {', '.join(missing)}")
    url = (
        f"{db.get('scheme', 'postgresql')}://{quote(str(db['username']))}:{quote(str(db['password']))}"
        f"@{db['hostname']}:{db.get('port', 5432)}/{db['db_name']}"
    )
    params = db.get("params") or {}
    return f"{url}?{urlencode(params, quote_via=quote)}" if params else url


def instance_study_storage(environ: Mapping[str, str] | None = None) -> str | None:
    """The study storage URL beside the instance configured at ``$DAGSTER_HOME``, or None without one."""
    env = os.environ if environ is None else environ
    home = (env.get("DAGSTER_HOME") or "").strip()
    if not home:
        return None
    config_file = Path(home).expanduser() / "dagster.yaml"
    config = (yaml.safe_load(config_file.read_text()) if config_file.is_file() else None) or {}
    storage = config.get("storage") or {}
    run_storage = config.get("run_storage") or {}
    if "postgres" in storage:
        return with_search_path(postgres_url(storage["postgres"], env), SCHEMA)
    if str(run_storage.get("module", "")).startswith("dagster_postgres"):  # storage configured per component
        return with_search_path(postgres_url(run_storage.get("config") or {}, env), SCHEMA)
    if storage and "sqlite" not in storage:
        return None  # another database (MySQL, ...): set FAKENEWS_OPTUNA_STORAGE to share studies there
    base = _value((storage.get("sqlite") or {}).get("base_dir"), env, "sqlite.base_dir")
    folder = Path(base).expanduser() if base else Path(home).expanduser() / "storage"
    return f"sqlite:///{folder.joinpath(*SQLITE_FILE)}"
