"""Structured pruning: importance ranking, physical removal of heads and FFN neurons, and the pruned serving
variants (saved, checked, reloaded with their smaller shapes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakenews_ml.bundle import load_bundle
from fakenews_ml.config import QuantizeConfig
from fakenews_ml.data.tokenize import tokenize_frame
from fakenews_ml.errors import BundleError
from fakenews_ml.model import pruning
from fakenews_ml.model.inference import padded_batches, predict_probs
from fakenews_ml.predict import Predictor, variant_path
from fakenews_ml.quantize import quantize_bundle


@pytest.fixture
def model_and_batches(tiny_bundle, tiny_frames):
    bundle = load_bundle(tiny_bundle)
    split = tokenize_frame(tiny_frames["val"], bundle.tokenizer, bundle.model_config.max_length)
    return bundle, split, list(padded_batches(split, bundle.tokenizer.pad_token_id, 16))


def _silence(model, layer_index: int, head: int, neuron: int) -> None:
    """Make one head's context and one FFN neuron's contribution exactly zero."""
    layer = model.encoder.encoder.layer[layer_index]
    size = layer.attention.self.attention_head_size
    with torch.no_grad():
        layer.attention.self.value.weight[head * size : (head + 1) * size] = 0
        layer.attention.self.value.bias[head * size : (head + 1) * size] = 0
        layer.output.dense.weight[:, neuron] = 0


def test_silent_units_score_zero_and_removing_them_changes_nothing(model_and_batches):
    bundle, split, batches = model_and_batches
    model = bundle.model
    _silence(model, layer_index=1, head=0, neuron=5)
    scores = pruning.importance(model, batches)
    assert float(scores.heads[1][0]) == 0 and float(scores.neurons[1][5]) == 0
    assert all(float(s.min()) > 0 for s in (scores.heads[0], scores.heads[1][1:], scores.neurons[0]))

    keep = pruning.plan(scores, head_share=0.25, neuron_share=1 / 128)  # 1 of 4 heads, 1 of 128 neurons
    assert keep.heads[1].tolist() == [1] and keep.heads[0].tolist() == [0, 1]
    assert 5 not in keep.neurons[1].tolist() and len(keep.neurons[0]) == 64
    before = predict_probs(model, split, bundle.tokenizer.pad_token_id)
    pruning.prune(model.encoder, keep)
    assert pruning.shapes_of(model.encoder) == {"heads": [2, 1], "intermediate": [64, 63]}
    assert model.encoder.encoder.layer[1].attention.self.query.out_features == 16
    # the removed units contributed nothing, so the smaller model computes the same function
    np.testing.assert_allclose(predict_probs(model, split, bundle.tokenizer.pad_token_id), before, atol=1e-5)


def test_every_layer_keeps_a_head():
    scores = pruning.Importance([torch.tensor([0.1, 0.2]), torch.tensor([5.0, 6.0])], [torch.ones(4), torch.ones(4)])
    keep = pruning.plan(scores, head_share=0.75, neuron_share=0.5)
    assert [len(k) for k in keep.heads] == [1, 1] and keep.heads[0].tolist() == [1]
    assert sum(len(k) for k in keep.neurons) == 4


def test_pruned_variants_are_smaller_bundles_that_serve(tiny_bundle_copy, tiny_frames):
    config = QuantizeConfig(
        variants=["pruned", "pruned_int8"], prune_head_share=0.5, prune_neuron_share=0.5, prune_recovery_steps=6
    )
    report = quantize_bundle(tiny_bundle_copy, tiny_frames["test"], config)
    summary = report["pruning"]
    assert summary["prune_head_share"] == 0.5 and summary["prune_recovery_steps"] == 6
    assert sum(summary["shapes"]["heads"]) == 2 and sum(summary["shapes"]["intermediate"]) == 64
    assert summary["parameters"] < summary["parameters_fp32"]
    titles = tiny_frames["test"]["title"].tolist()
    for variant in ("pruned", "pruned_int8"):
        assert report[variant]["size_ratio"] < 1 and report[variant]["location"] == f"variants/{variant}"
        path = tiny_bundle_copy / "variants" / variant
        encoder_config = json.loads((path / "encoder" / "config.json").read_text())
        assert encoder_config[pruning.PRUNED_SHAPES] == summary["shapes"]
        loaded = load_bundle(path)  # checksums verified, skeleton cut to the recorded shapes
        assert loaded.variant == variant
        assert pruning.shapes_of(loaded.model.encoder) == summary["shapes"]
        probs = Predictor(loaded).predict_proba(titles)
        assert probs.shape == (len(titles),) and np.all((probs >= 0) & (probs <= 1))
    assert pruning.parameter_count(load_bundle(tiny_bundle_copy / "variants" / "pruned").model) == summary["parameters"]
    assert variant_path(tiny_bundle_copy, "pruned") == tiny_bundle_copy / "variants" / "pruned"


def test_shapes_that_do_not_fit_are_a_bundle_error(tiny_bundle_copy, tiny_frames):
    quantize_bundle(tiny_bundle_copy, tiny_frames["test"], QuantizeConfig(variants=["pruned"], prune_recovery_steps=0))
    config_file = tiny_bundle_copy / "variants" / "pruned" / "encoder" / "config.json"
    config = json.loads(config_file.read_text())
    config[pruning.PRUNED_SHAPES]["heads"] = [3, 1]  # more heads than the layer has
    config_file.write_text(json.dumps(config))
    with pytest.raises(BundleError, match="config.json"):
        load_bundle(tiny_bundle_copy / "variants" / "pruned")


def test_encoders_without_bert_layers_are_refused():
    with pytest.raises(ValueError, match="BERT-style encoders only"):
        pruning.shapes_of(torch.nn.Linear(2, 2))


def test_the_stage_reuses_pruned_variants_only_for_the_same_settings(
    tiny_bundle, tiny_frames, store_bundle, store_splits, fakenews_home
):
    from fakenews_ml.stages.quantization import quantize_or_reuse

    trained, splits = store_bundle(tiny_bundle), store_splits(tiny_frames)
    config = QuantizeConfig(variants=["int8", "pruned_int8"], prune_recovery_steps=2)
    first = quantize_or_reuse(trained, splits, config)
    assert not first.reused and first.pruning["prune_recovery_steps"] == 2
    assert set(first.parity) == {"int8", "pruned_int8"} and first.variant_weights["pruned_int8"]
    assert quantize_or_reuse(trained, splits, config).reused
    assert quantize_or_reuse(trained, splits, QuantizeConfig(variants=["int8"])).reused  # pruning not asked for
    other = quantize_or_reuse(trained, splits, config.model_copy(update={"prune_head_share": 0.25}))
    assert not other.reused and other.pruning["prune_head_share"] == 0.25
    assert load_bundle(fakenews_home / trained.bundle / "variants" / "pruned_int8").variant == "pruned_int8"
