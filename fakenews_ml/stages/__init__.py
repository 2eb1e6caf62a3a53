"""The lifecycle's steps as plain functions, one per Dagster asset (and one per asset check).

Each step takes the *manifests* of its inputs (small JSON-able dicts naming files and fingerprints),
writes its own output into a content-addressed folder (``fakenews_ml.artifacts``) or the model registry,
and returns its own manifest. Steps whose output already exists for the same inputs return it without
redoing the work, so an unchanged graph re-materializes in seconds and never retrains needlessly.
Nothing here knows about Dagster.
"""
