"""SmoothQuant-style smoothing of the int8 variant: exact in float, closer to fp32 once quantized, stored and
reloaded with the bundle, and skipped (plain int8) for bundles without calibration titles."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from fakenews_ml.bundle import CALIBRATION_TABLE, load_bundle
from fakenews_ml.config import QuantizeConfig
from fakenews_ml.data.tokenize import tokenize_frame
from fakenews_ml.model.inference import predict_probs
from fakenews_ml.model.smoothing import SmoothedLinear, input_maxima, smooth_inputs
from fakenews_ml.model.weights import quantize_int8
from fakenews_ml.quantize import calibration_titles, quantize_bundle
from fakenews_ml.stages.quantization import quantize_or_reuse


@pytest.fixture(scope="module")
def calibrated(tiny_bundle, tiny_frames):
    base = load_bundle(tiny_bundle)
    calibration, test = (
        tokenize_frame(tiny_frames[name], base.tokenizer, base.model_config.max_length) for name in ("train", "test")
    )
    maxima = input_maxima(base.model, lambda model: predict_probs(model, calibration, base.tokenizer.pad_token_id))
    return base, maxima, test


def test_the_bundle_keeps_a_sample_of_train_titles_for_calibration(tiny_bundle, tiny_frames):
    titles = calibration_titles(tiny_bundle)
    assert len(titles) == len(tiny_frames["train"])  # fewer than 512 train rows: all of them
    assert set(titles) == set(tiny_frames["train"]["title"]) and not set(titles) & set(tiny_frames["test"]["title"])


def test_smoothing_changes_nothing_before_quantization(calibrated):
    base, maxima, test = calibrated
    pad = base.tokenizer.pad_token_id
    smoothed = smooth_inputs(base.model, maxima, alpha=0.8)
    wrapped = [m for m in smoothed.modules() if isinstance(m, SmoothedLinear)]
    assert len(wrapped) == 2 * 6  # query, key, value, attention output, feed-forward in and out, per layer
    assert not any(isinstance(m, SmoothedLinear) for m in base.model.modules())  # the original is untouched
    assert not torch.equal(wrapped[0].input_scale, torch.ones_like(wrapped[0].input_scale))
    np.testing.assert_allclose(predict_probs(smoothed, test, pad), predict_probs(base.model, test, pad), atol=1e-5)


class _OneLayerEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 64))

    def forward(self, x):
        return self.encoder(x)


def test_smoothing_brings_int8_closer_to_fp32_when_an_input_channel_is_an_outlier():
    """The case it is for: one input channel 50x the others sets the dynamic activation scale, so plain
    int8 rounds every other channel coarsely; smoothed, the outlier's range moves into the weights."""
    torch.manual_seed(0)
    model = _OneLayerEncoder().eval()

    def rows(n):
        x = torch.randn(n, 64)
        x[:, 0] *= 50
        return x

    calibration, test = rows(256), rows(256)
    maxima = input_maxima(model, lambda m: m(calibration))
    with torch.inference_mode():
        reference = model(test)
        plain = (quantize_int8(model)(test) - reference).abs().mean()
        smoothed = (quantize_int8(smooth_inputs(model, maxima, alpha=0.8))(test) - reference).abs().mean()
    assert smoothed < 0.3 * plain, (float(smoothed), float(plain))


def test_bundles_without_calibration_titles_get_plain_int8(tiny_bundle_copy, tiny_frames):
    (tiny_bundle_copy / f"{CALIBRATION_TABLE}.csv").unlink()
    report = quantize_bundle(tiny_bundle_copy, tiny_frames["test"], QuantizeConfig(variants=["int8"]))
    assert report["int8_smoothing"] is None
    assert not any(
        isinstance(m, SmoothedLinear) for m in load_bundle(tiny_bundle_copy / "variants" / "int8").model.modules()
    )


def test_smoothing_can_be_switched_off_and_a_new_strength_requantizes(
    tiny_bundle, tiny_frames, store_bundle, store_splits, fakenews_home
):
    trained, splits = store_bundle(tiny_bundle), store_splits(tiny_frames)
    config = QuantizeConfig(variants=["int8"])
    first = quantize_or_reuse(trained, splits, config)
    assert first.int8_smoothing["alpha"] == config.smoothing_alpha and not first.reused
    assert quantize_or_reuse(trained, splits, config).reused
    off = quantize_or_reuse(trained, splits, QuantizeConfig(variants=["int8"], smoothing_alpha=None))
    assert not off.reused and off.int8_smoothing is None
    int8 = load_bundle(fakenews_home / trained.bundle / "variants" / "int8")
    assert not any(isinstance(m, SmoothedLinear) for m in int8.model.modules())


def test_a_smoothed_int8_bundle_reloads_with_its_scales(tiny_bundle, tiny_frames, tmp_path):
    path = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    quantize_bundle(path, tiny_frames["test"], QuantizeConfig(variants=["int8"]))
    model = load_bundle(path / "variants" / "int8").model
    wrapped = {name: m for name, m in model.named_modules() if isinstance(m, SmoothedLinear)}
    assert len(wrapped) == 12
    assert all(torch.isfinite(m.input_scale).all() and (m.input_scale > 0).all() for m in wrapped.values())
    probs = predict_probs(model, tokenize_frame(tiny_frames["test"], load_bundle(path).tokenizer, 32), 0)
    assert np.all((probs >= 0) & (probs <= 1))


@pytest.mark.parametrize("content", ["headline\nfoo\n", "", "title\n", "title\n\xff\xfe\n"])
def test_a_broken_calibration_file_is_a_clear_error_and_the_variants_stay(tiny_bundle_copy, tiny_frames, content):
    from fakenews_ml.errors import BundleError

    quantize_bundle(tiny_bundle_copy, tiny_frames["test"], QuantizeConfig(variants=["int8"]))
    before = (tiny_bundle_copy / "variants" / "int8" / "model.safetensors").read_bytes()
    (tiny_bundle_copy / f"{CALIBRATION_TABLE}.csv").write_bytes(content.encode("latin-1"))
    with pytest.raises(BundleError, match="calibration_titles.csv .*delete it to quantize without smoothing"):
        quantize_bundle(tiny_bundle_copy, tiny_frames["test"], QuantizeConfig(variants=["int8"]))
    assert (tiny_bundle_copy / "variants" / "int8" / "model.safetensors").read_bytes() == before
