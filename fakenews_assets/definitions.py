"""The code location: the one ``Definitions`` object (``dagster dev`` finds it via pyproject's [tool.dagster])."""

from __future__ import annotations

import dagster as dg

from fakenews_assets.assets.data import (
    news_splits,
    raw_news,
    tokenized_news,
    validated_news,
)
from fakenews_assets.assets.deployment import (
    production_model,
    quantized_model,
    reference_profile,
)
from fakenews_assets.assets.monitoring import (
    daily_predictions,
    drift_report,
    feedback_labels,
    prediction_log,
)
from fakenews_assets.assets.training import model_evaluation, trained_model
from fakenews_assets.checks import ASSET_CHECKS
from fakenews_assets.executor import choose_executor
from fakenews_assets.jobs import JOBS
from fakenews_assets.resources import build_resources
from fakenews_assets.schedules import SCHEDULES
from fakenews_assets.sensors import SENSORS

ASSETS = [
    raw_news,
    feedback_labels,
    validated_news,
    news_splits,
    tokenized_news,
    trained_model,
    model_evaluation,
    quantized_model,
    production_model,
    reference_profile,
    prediction_log,
    daily_predictions,
    drift_report,
]


def build_definitions(environ=None) -> dg.Definitions:
    """``environ`` overrides the process environment when choosing resources (tests use it)."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=ASSET_CHECKS,
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=build_resources(environ),
        # In-process by default (torch, transformers and GX imported once per run); FAKENEWS_EXECUTOR picks
        # multiprocess or Kubernetes (one pod per step, resources from fakenews_assets/k8s.py).
        executor=choose_executor(environ),
    )


defs = build_definitions()
