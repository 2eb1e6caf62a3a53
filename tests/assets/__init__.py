"""Tests of the Dagster asset graph (fakenews_assets)."""
