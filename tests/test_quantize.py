"""Quantized serving variants: int8 and bf16 bundles, the parity report and which variant is recommended."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakenews_ml import quantize as quantize_module
from fakenews_ml.bundle import WEIGHTS_FILE, bundle_size, load_bundle, read_meta
from fakenews_ml.config import QuantizeConfig
from fakenews_ml.data.tokenize import tokenize_frame
from fakenews_ml.predict import Predictor, variant_path
from fakenews_ml.quantize import REPORT_FILE, quantize_bundle

PARITY_FIELDS = (
    "accuracy_ref",
    "accuracy_variant",
    "accuracy_delta",
    "agreement",
    "max_abs_prob_diff",
    "mean_abs_prob_diff",
    "n",
    "threshold",
    "passed",
)


@pytest.fixture(scope="module")
def quantized(tiny_bundle, tiny_frames, tmp_path_factory):
    """The tiny bundle copied once and quantized with the default config (both variants)."""
    import shutil

    path = shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("quantized") / "bundle")
    base = load_bundle(path)
    split = tokenize_frame(tiny_frames["test"], base.tokenizer, base.model_config.max_length)
    return path, quantize_bundle(path, tiny_frames["test"]), split


def test_variants_are_written_as_loadable_bundles(quantized, tiny_frames):
    path, report, _ = quantized
    titles = tiny_frames["test"]["title"].tolist()
    fp32 = Predictor.from_path(path, "fp32").predict_proba(titles)
    for variant in ("int8", "bf16"):
        vpath = path / "variants" / variant
        assert report[variant]["location"] == f"variants/{variant}" and vpath == path / report[variant]["location"]
        loaded = load_bundle(vpath)
        assert loaded.variant == variant
        assert loaded.threshold == load_bundle(path).threshold
        probs = Predictor(loaded).predict_proba(titles)
        assert probs.shape == (len(titles),) and np.all((probs >= 0) & (probs <= 1))
        # a quantized model approximates fp32; it is not a different model
        assert np.abs(probs - fp32).max() < 0.1, variant
        assert loaded.lineage["variant_of"] == {"version": read_meta(path)["version"], "location": "../.."}
        assert loaded.metrics["parity"]["agreement"] == report[variant]["agreement"]


def test_a_variant_carries_its_champions_version_and_names_itself_by_variant(quantized, tiny_frames):
    """One model, one version string: the int8 and bf16 variants answer with the bundle's version everywhere
    (bundle.json, the loaded bundle, the predictor the API and the drift profile use); the variant is a field."""
    import shutil

    from fakenews_ml.monitoring.reference import build_reference_profile

    path, _, _ = quantized
    version = read_meta(path)["version"]
    for variant in ("int8", "bf16"):
        meta = read_meta(path / "variants" / variant)
        assert (meta["version"], meta["variant"]) == (version, variant)
        assert meta["weights_sha256"] != read_meta(path)["weights_sha256"]  # its own weights, still told apart
        predictor = Predictor.from_path(path, variant)
        assert (predictor.version, predictor.bundle.variant) == (version, variant)
    profile = build_reference_profile(tiny_frames["test"], Predictor.from_path(path, "int8"), max_rows=8, seed=0)
    assert profile.attrs["model_version"] == version  # what a drift report names

    # a variant written before variants carried the version: its lineage still names the champion
    old = shutil.copytree(path / "variants" / "int8", path.parent / "old_int8")
    raw = json.loads((old / "bundle.json").read_text())
    (old / "bundle.json").write_text(json.dumps({**raw, "version": "20240101-000000-deadbeef"}))
    assert read_meta(old)["version"] == "20240101-000000-deadbeef" and load_bundle(old).version == version


def test_variant_weights_have_the_expected_types(quantized):
    from safetensors import safe_open

    path, _, _ = quantized
    with safe_open(str(path / "variants" / "bf16" / WEIGHTS_FILE), "pt") as f:
        assert f.get_tensor("head.weight").dtype == torch.bfloat16
    with safe_open(str(path / "variants" / "int8" / WEIGHTS_FILE), "pt") as f:
        int8_keys = [k for k in f.keys() if k.endswith(".weight_int8")]  # noqa: SIM118 - safe_open is not iterable
        assert int8_keys and all(f.get_tensor(k).dtype == torch.int8 for k in int8_keys)
    int8_model = load_bundle(path / "variants" / "int8").model
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    assert sum(isinstance(m, DynamicQuantizedLinear) for m in int8_model.modules()) >= 2 * 6 + 1  # 6 per layer + head
    assert not list((path / "variants").rglob("*.pt")) and not list((path / "variants").rglob("*.bin"))


def test_parity_report_fields_are_in_range(quantized):
    path, report, split = quantized
    assert json.loads((path / REPORT_FILE).read_text()) == report
    assert report["eval_rows"] == len(split)
    assert report["fp32"]["size_bytes"] == bundle_size(path)
    assert report["bounds"] == {"max_accuracy_drop": 0.01, "min_agreement": 0.97}
    for variant in ("int8", "bf16"):
        r = report[variant]
        for name in PARITY_FIELDS:
            assert name in r, (variant, name)
        assert 0 <= r["agreement"] <= 1
        assert 0 <= r["accuracy_variant"] <= 1 and 0 <= r["accuracy_ref"] <= 1
        assert r["accuracy_delta"] == pytest.approx(r["accuracy_variant"] - r["accuracy_ref"])
        assert -1 <= r["accuracy_delta"] <= 1
        assert 0 <= r["mean_abs_prob_diff"] <= r["max_abs_prob_diff"] <= 1
        assert r["n"] == len(split)
        assert r["rows_per_second"] > 0 and r["speedup_vs_fp32"] > 0
        assert r["size_ratio"] == pytest.approx(r["size_bytes"] / report["fp32"]["size_bytes"], abs=1e-3)
        expected = -r["accuracy_delta"] <= 0.01 and r["agreement"] >= 0.97
        assert r["passed"] is expected


def test_quantized_bundles_are_smaller(quantized):
    path, report, _ = quantized
    fp32 = bundle_size(path)
    assert report["int8"]["size_bytes"] == bundle_size(path / "variants" / "int8") < fp32
    # bf16 halves every floating tensor
    assert report["bf16"]["size_bytes"] == pytest.approx(fp32 / 2, rel=0.01)


def test_recommended_is_a_passing_variant_or_fp32(quantized):
    path, report, _ = quantized
    recommended = report["recommended"]
    assert recommended in ("fp32", "int8", "bf16")
    if recommended != "fp32":
        assert report[recommended]["passed"]
        passing = [v for v in ("int8", "bf16") if report[v]["passed"]]
        assert report[recommended]["rows_per_second"] == max(report[v]["rows_per_second"] for v in passing)
    else:
        assert not any(report[v]["passed"] for v in ("int8", "bf16"))
    expected_dir = path if recommended == "fp32" else path / "variants" / recommended
    assert variant_path(path, "auto") == expected_dir
    assert Predictor.from_path(path, "auto").bundle.variant == recommended


def _degrade(first_n: int, monkeypatch):
    """parity_report that reports the first ``first_n`` variants as disagreeing with fp32 half the time."""
    real = quantize_module.parity_report
    calls = []

    def degraded(*args, **kwargs):
        parity = real(*args, **kwargs)
        calls.append(parity)
        if len(calls) <= first_n:
            parity = {**parity, "agreement": 0.5}
        return parity

    monkeypatch.setattr(quantize_module, "parity_report", degraded)


def test_a_variant_failing_its_bounds_is_not_recommended(tiny_bundle_copy, tiny_frames, monkeypatch):
    _degrade(1, monkeypatch)  # int8 (first in the list) "disagrees"; bf16 is honest
    config = QuantizeConfig(variants=["int8", "bf16"], max_accuracy_drop=1.0, min_agreement=0.9)
    report = quantize_bundle(tiny_bundle_copy, tiny_frames["val"], config)
    assert report["int8"]["passed"] is False
    assert report["bf16"]["passed"] is True
    assert report["recommended"] == "bf16"
    assert variant_path(tiny_bundle_copy, "auto") == tiny_bundle_copy / "variants" / "bf16"


def test_when_every_variant_fails_fp32_is_served(tiny_bundle_copy, tiny_frames, monkeypatch):
    _degrade(99, monkeypatch)
    report = quantize_bundle(tiny_bundle_copy, tiny_frames["val"], QuantizeConfig(variants=["int8"]))
    assert report["int8"]["passed"] is False
    assert report["recommended"] == "fp32"
    assert "bf16" not in report and not (tiny_bundle_copy / "variants" / "bf16").exists()
    assert variant_path(tiny_bundle_copy, "auto") == tiny_bundle_copy
    assert Predictor.from_path(tiny_bundle_copy).bundle.variant == "fp32"
    # an explicitly requested variant is still served: the bound decides only the automatic choice
    assert Predictor.from_path(tiny_bundle_copy, "int8").bundle.variant == "int8"


def test_accuracy_drop_bound_is_applied(tiny_bundle_copy, tiny_frames, monkeypatch):
    real = quantize_module.parity_report
    monkeypatch.setattr(
        quantize_module, "parity_report", lambda *a, **k: {**real(*a, **k), "accuracy_delta": -0.02, "agreement": 1.0}
    )
    report = quantize_bundle(
        tiny_bundle_copy, tiny_frames["val"], QuantizeConfig(variants=["bf16"], max_accuracy_drop=0.01)
    )
    assert report["bf16"]["passed"] is False and report["recommended"] == "fp32"
    report = quantize_bundle(
        tiny_bundle_copy, tiny_frames["val"], QuantizeConfig(variants=["bf16"], max_accuracy_drop=0.02)
    )
    assert report["bf16"]["passed"] is True and report["recommended"] == "bf16"


def test_quantize_config_bounds_are_validated():
    with pytest.raises(ValueError):
        QuantizeConfig(min_agreement=1.01)
    with pytest.raises(ValueError):
        QuantizeConfig(variants=["fp16"])


def test_saved_variants_predict_exactly_like_the_in_memory_quantized_model(quantized):
    """pack/unpack are lossless: what was measured in the parity report is what gets served."""
    from fakenews_ml.model.inference import predict_probs
    from fakenews_ml.quantize import calibration_titles, variant_model

    path, report, split = quantized
    base = load_bundle(path)
    pad = base.tokenizer.pad_token_id
    assert report["int8_smoothing"] == {"alpha": QuantizeConfig().smoothing_alpha, "calibration_rows": 96}
    smoothed = variant_model(base, "int8", calibration_titles(path), report["int8_smoothing"]["alpha"])
    in_memory = {
        "int8": predict_probs(smoothed, split, pad),
        "bf16": predict_probs(load_bundle(path).model.to(torch.bfloat16), split, pad, autocast_dtype=torch.bfloat16),
    }
    for variant, expected in in_memory.items():
        served = Predictor(load_bundle(path / "variants" / variant))
        assert served.autocast == (torch.bfloat16 if variant == "bf16" else None)
        np.testing.assert_array_equal(
            predict_probs(served.bundle.model, split, pad, autocast_dtype=served.autocast), expected
        )


def test_int8_weights_have_one_scale_per_output_channel(quantized):
    from safetensors import safe_open

    path, _, _ = quantized
    with safe_open(str(path / "variants" / "int8" / WEIGHTS_FILE), "pt") as f:
        values, scales = f.get_tensor("head.weight_int8"), f.get_tensor("head.weight_scale")
        assert scales.shape == (values.shape[0],) and int(f.get_tensor("head.weight_axis")) == 0
    head = load_bundle(path / "variants" / "int8").model.head.weight()
    assert head.qscheme() == torch.per_channel_affine
    torch.testing.assert_close(head.q_per_channel_scales().double(), scales)


def test_int8_bundles_with_one_scale_per_tensor_still_load(quantized):
    """Bundles quantized before per-channel scales carry one scale per weight: they load as they were."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    from fakenews_ml.model.classifier import HeadlineClassifier
    from fakenews_ml.model.inference import predict_probs
    from fakenews_ml.model.weights import pack, unpack

    path, _, split = quantized
    base = load_bundle(path)
    per_tensor = quantize_dynamic(base.model, {torch.nn.Linear: default_dynamic_qconfig}, dtype=torch.qint8)
    tensors = pack(per_tensor, "int8")
    assert not any(k.endswith(".weight_axis") for k in tensors) and tensors["head.weight_scale"].numel() == 1
    skeleton = HeadlineClassifier.from_encoder_config(base.model.encoder.config, base.model_config)
    reloaded = unpack(skeleton, tensors, "int8")
    assert reloaded.head.weight().qscheme() == torch.per_tensor_affine
    pad = base.tokenizer.pad_token_id
    np.testing.assert_array_equal(predict_probs(reloaded, split, pad), predict_probs(per_tensor, split, pad))
