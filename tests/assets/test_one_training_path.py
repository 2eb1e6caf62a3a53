"""One training path: ``fakenews train`` and the asset graph run the same stage functions, with the same cache
and the same lineage format."""

from __future__ import annotations

import json

import dagster as dg

from fakenews_ml.cli import main

from .conftest import GOOD_TRAINING, MAX_LENGTH, materialize, only_ops, read_manifests, run_config
from .data import write_news_csv

UP_TO_TRAINING = dg.AssetSelection.assets("trained_model").upstream() | dg.AssetSelection.checks_for_assets(
    "validated_news", "news_splits"
)
COMPUTE = {"accelerator": "cpu", "precision": "32-true", "num_threads": 2}  # what run_config gives the resource


def _cli_train(config_file, capsys) -> dict:
    assert main(["train", "--config", str(config_file), "--no-progress"]) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_the_cli_and_the_graph_train_the_same_bundle_with_the_same_lineage(
    tmp_path, tiny_encoder_dir, capsys, monkeypatch
):
    sources = write_news_csv(tmp_path / "news.csv", n=240, seed=5)
    graph_home, cli_home = tmp_path / "graph_home", tmp_path / "cli_home"
    config = only_ops(run_config(tiny_encoder_dir), "tokenized_news", "trained_model")
    run = materialize(graph_home, sources, config, selection=UP_TO_TRAINING)
    assert run.result.success, run.failed_steps
    graph_trained = read_manifests(graph_home)["trained_model"]

    # the same settings for the CLI, as a PipelineConfig file: data and validation defaults, the same model
    pipeline = {
        "data": {"sources": [str(sources)]},
        "model": {"encoder": str(tiny_encoder_dir), "max_length": MAX_LENGTH},
        "train": {**GOOD_TRAINING, **COMPUTE},
    }
    config_file = tmp_path / "pipeline.json"
    config_file.write_text(json.dumps(pipeline))
    monkeypatch.setenv("FAKENEWS_HOME", str(cli_home))
    first = _cli_train(config_file, capsys)
    assert first["reused"] is False and first["store_location"] == graph_trained.bundle  # the same cache key

    graph_lineage = json.loads((graph_home / graph_trained.bundle / "lineage.json").read_text())
    cli_lineage = json.loads((cli_home / first["store_location"] / "lineage.json").read_text())
    assert cli_lineage.keys() == graph_lineage.keys()
    for part in ("splits", "sources", "tokenized", "cache_key", "code_version", "feedback", "encoder"):
        assert cli_lineage[part] == graph_lineage[part], part
    assert set(cli_lineage["splits"]) == {"train", "val", "test"}

    # nothing changed: the second CLI run reuses the cached bundle without training
    weights = cli_home / first["store_location"] / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    second = _cli_train(config_file, capsys)
    assert second["reused"] is True and second["store_location"] == first["store_location"]
    assert weights.stat().st_mtime_ns == mtime

    # one setting changed: a new key, a new bundle
    pipeline["train"]["learning_rate"] = 1e-3
    config_file.write_text(json.dumps(pipeline))
    third = _cli_train(config_file, capsys)
    assert third["reused"] is False and third["store_location"] != first["store_location"]
