"""Jobs: the whole graph, and the retraining path from the sources to a promoted model."""

from __future__ import annotations

import dagster as dg

from fakenews_assets.assets.deployment import production_model, reference_profile

full_pipeline_job = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Every asset and check: ingest, validate, split, tokenize, train, evaluate, quantize, promote, profile.",
)

# Everything production_model and reference_profile are made from: the sources are re-read (so new data is
# picked up), and each step reuses its previous output when its inputs are unchanged (no needless retraining).
retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.assets(production_model, reference_profile).upstream(),
    description="Re-read the sources and carry them through training and the gates to promotion; trains only "
    "when the data, the settings or the training code changed.",
)

JOBS = [full_pipeline_job, retrain_job]
