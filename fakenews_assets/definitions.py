"""The code location: one ``Definitions`` collected from the modules that define things (``dagster dev`` finds it
through pyproject's [tool.dagster] and workspace.yaml). A new asset, check, job, schedule or sensor in one of
these modules is picked up without being added to any list."""

from __future__ import annotations

import warnings

import dagster as dg

from fakenews_assets import jobs, rollback, schedules, sensors
from fakenews_assets.assets import data, deployment, model_lab, monitoring, training
from fakenews_assets.executor import choose_executor
from fakenews_assets.resources import build_resources

ASSET_MODULES = (data, training, deployment, monitoring, model_lab)  # assets with their checks
MODULES = (*ASSET_MODULES, jobs, rollback, schedules, sensors)


def build_definitions(environ=None) -> dg.Definitions:
    """``environ`` overrides the process environment when choosing resources (tests use it)."""
    # Marked preview in dagster 1.13 (pinned here); it is the documented way to collect a code location's
    # definitions from its modules, so the warning is silenced here rather than shown at every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.load_definitions_from_modules(
            MODULES,
            resources=build_resources(environ),
            # In-process by default (torch, transformers and GX imported once per run); FAKENEWS_EXECUTOR picks
            # multiprocess or Kubernetes (one pod per step, resources from fakenews_assets/k8s.py).
            executor=choose_executor(environ),
        )


defs = build_definitions()
