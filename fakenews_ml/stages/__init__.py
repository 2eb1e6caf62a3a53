"""The lifecycle's steps as plain functions, one module per Dagster asset (the module's checks beside it).

Each step takes the typed manifests of its inputs (``fakenews_ml.manifests``: locations in the artifact store and
fingerprints), writes its own output into a content-addressed folder (``fakenews_ml.artifacts``) or the model
registry, and returns its own manifest. A module's ``CODE_VERSION`` (``fakenews_ml.code_versions``) is part of
every key it makes. Steps whose output already exists for the same inputs, settings and code return it without
redoing the work, so an unchanged graph re-materializes in seconds and never retrains needlessly.
``lifecycle`` runs the training steps in a row for the CLI and the benchmarks. Nothing here knows about Dagster.
"""
