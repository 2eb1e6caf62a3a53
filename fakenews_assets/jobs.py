"""Jobs: the training graph (full_pipeline, retrain) and the daily drift report (drift_job)."""

from __future__ import annotations

import dagster as dg

from fakenews_assets.assets.deployment import production_model, reference_profile
from fakenews_assets.assets.model_lab import hyperparameter_search
from fakenews_assets.assets.monitoring import (
    DAILY_PARTITIONS,
    daily_predictions,
    drift_report,
    live_quality,
)

# Everything production_model and reference_profile are made from, feedback labels included (the observed
# prediction_log source is read, not materialized). The daily-partitioned monitoring assets are not part of
# it: a run covers either the one training graph or one day of traffic.
TRAINING_SELECTION = dg.AssetSelection.assets(production_model, reference_profile).upstream().materializable()
SEARCH_SELECTION = dg.AssetSelection.assets(hyperparameter_search)  # launched on purpose, never by the pipeline
DRIFT_SELECTION = dg.AssetSelection.assets(daily_predictions, drift_report, live_quality)

full_pipeline_job = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all() - DRIFT_SELECTION - SEARCH_SELECTION,
    description="Every unpartitioned asset and check but the hyperparameter search: ingest, merge feedback, "
    "validate, split, tokenize, train, evaluate, quantize, promote, profile. (Drift reports are per day: drift_job.)",
)

# The sources are re-read and the feedback labels re-snapshotted (so new data is picked up), and each step reuses
# its previous output when its inputs are unchanged (no needless retraining). The drift sensor launches it.
retrain_job = dg.define_asset_job(
    "retrain",
    selection=TRAINING_SELECTION,
    description="Re-read the sources and the feedback labels and carry them through the quality gates, training "
    "and the champion/challenger gate to promotion and a new reference profile; trains only when the data, "
    "the settings or the training code changed.",
)

drift_job = dg.define_asset_job(
    "drift_job",
    selection=DRIFT_SELECTION,
    partitions_def=DAILY_PARTITIONS,
    description="One day of logged traffic: snapshot it (daily_predictions), compare it with the reference "
    "profile (drift_report and its drift_within_thresholds check) and score the labelled part of it "
    "(live_quality and its check). Backfill it over past days from the UI.",
)
