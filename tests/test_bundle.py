"""Model bundles: faithful round trips, safetensors only, tamper and completeness checks, atomic overwrite."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fakenews_ml import atomic as atomic_module
from fakenews_ml import bundle as bundle_module
from fakenews_ml.bundle import WEIGHTS_FILE, load_bundle, read_meta, save_bundle
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.data.tokenize import tokenize_frame
from fakenews_ml.errors import BundleError
from fakenews_ml.model.classifier import HeadlineClassifier
from fakenews_ml.model.inference import predict_probs

PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy"}


def _save(path, model, tokenizer, model_config, threshold=0.5, **kwargs):
    return save_bundle(
        path,
        model,
        tokenizer,
        model.encoder.config,
        model_config,
        threshold=threshold,
        metrics=kwargs.pop("metrics", {}),
        lineage=kwargs.pop("lineage", {}),
        **kwargs,
    )


def _probs(model, tokenizer, frame, max_length=32):
    return predict_probs(model, tokenize_frame(frame, tokenizer, max_length), tokenizer.pad_token_id, batch_size=8)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


@pytest.fixture(scope="module")
def fresh_model(tiny_model_config):
    """An untrained classifier (random head): its outputs are arbitrary, so a faithful round trip shows."""
    torch.manual_seed(123)
    return HeadlineClassifier.from_pretrained(tiny_model_config).eval()


# --- round trips ------------------------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_predictions(
    fresh_model, tiny_tokenizer, tiny_model_config, tiny_frames, tmp_path
):
    before = _probs(fresh_model, tiny_tokenizer, tiny_frames["test"])
    path = _save(tmp_path / "b", fresh_model, tiny_tokenizer, tiny_model_config, threshold=0.37)
    loaded = load_bundle(path)
    assert loaded.variant == "fp32"
    assert loaded.threshold == pytest.approx(0.37)
    assert loaded.model_config == tiny_model_config
    assert not loaded.model.training
    for key, value in fresh_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    np.testing.assert_array_equal(_probs(loaded.model, loaded.tokenizer, tiny_frames["test"]), before)
    # the tokenizer travels with the bundle and encodes exactly as the original
    title = tiny_frames["test"]["title"].iloc[0]
    assert loaded.tokenizer(title)["input_ids"] == tiny_tokenizer(title)["input_ids"]
    assert loaded.tokenizer.pad_token_id == tiny_tokenizer.pad_token_id


def test_trained_bundle_resaved_predicts_the_same(tiny_bundle, tiny_frames, tmp_path):
    first = load_bundle(tiny_bundle)
    again = _save(tmp_path / "again", first.model, first.tokenizer, first.model_config, first.threshold)
    second = load_bundle(again)
    np.testing.assert_array_equal(
        _probs(first.model, first.tokenizer, tiny_frames["val"]),
        _probs(second.model, second.tokenizer, tiny_frames["val"]),
    )
    assert read_meta(again)["weights_sha256"] == read_meta(tiny_bundle)["weights_sha256"]


def test_cls_pooling_survives_the_round_trip(tiny_model_config, tiny_tokenizer, tiny_frames, tmp_path):
    config = tiny_model_config.model_copy(update={"pooling": "cls", "dropout": 0.3})
    model = HeadlineClassifier.from_pretrained(config).eval()
    loaded = load_bundle(_save(tmp_path / "cls", model, tiny_tokenizer, config))
    assert loaded.model.pooling == "cls"
    assert loaded.model_config == config
    np.testing.assert_array_equal(
        _probs(loaded.model, loaded.tokenizer, tiny_frames["val"]), _probs(model, tiny_tokenizer, tiny_frames["val"])
    )


# --- safetensors only -------------------------------------------------------------------------------------


def test_weights_are_safetensors_and_nothing_is_pickled(tiny_bundle):
    raw = (tiny_bundle / WEIGHTS_FILE).read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    assert raw[8:9] == b"{"
    header = json.loads(raw[8 : 8 + header_len])
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert "head.weight" in tensors and tensors["head.weight"]["dtype"] == "F32"
    assert any(k.startswith("encoder.") for k in tensors)
    for path in _files(tiny_bundle):
        assert path.suffix not in PICKLE_SUFFIXES, path
        assert not path.read_bytes()[:2].startswith(b"\x80"), f"{path} looks like a pickle"


def test_loading_never_calls_torch_load(tiny_bundle, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_bundle must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    load_bundle(tiny_bundle)


# --- integrity and completeness ---------------------------------------------------------------------------


def test_tampered_weights_are_refused(tiny_bundle_copy):
    weights = tiny_bundle_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one bit in the last tensor's data: still a valid safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(tiny_bundle_copy)


def test_swapped_weights_file_is_refused(tiny_bundle_copy, fresh_model):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in fresh_model.state_dict().items()}, str(tiny_bundle_copy / WEIGHTS_FILE))
    with pytest.raises(BundleError, match="tampered"):
        load_bundle(tiny_bundle_copy)


@pytest.mark.parametrize("missing", ["tokenizer", WEIGHTS_FILE, "bundle.json", "encoder/config.json"])
def test_incomplete_bundle_names_what_is_missing(tiny_bundle_copy, missing):
    target = tiny_bundle_copy / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    for loader in (read_meta, load_bundle):
        with pytest.raises(BundleError, match="missing") as info:
            loader(tiny_bundle_copy)
        assert missing in str(info.value)
        assert str(tiny_bundle_copy) in str(info.value)


def test_missing_directory_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="no such"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError):
        read_meta(tmp_path / "file")


def test_unreadable_or_future_bundle_json(tiny_bundle_copy):
    meta_file = tiny_bundle_copy / "bundle.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(BundleError, match="format 99"):
        load_bundle(tiny_bundle_copy)
    meta_file.write_text("{not json")
    with pytest.raises(BundleError, match="bundle.json"):
        read_meta(tiny_bundle_copy)


# --- atomic writes ----------------------------------------------------------------------------------------


def _snapshot(path: Path) -> dict:
    return {str(p.relative_to(path)): sha256_file(p) for p in _files(path)}


def test_failed_save_leaves_the_old_bundle_intact(
    tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config, monkeypatch
):
    before = _snapshot(tiny_bundle_copy)
    real_write = bundle_module._write_json

    def crash_on_lineage(path, data):
        if path.name == "lineage.json":
            raise OSError("disk full (simulated)")
        real_write(path, data)

    monkeypatch.setattr(bundle_module, "_write_json", crash_on_lineage)
    with pytest.raises(OSError, match="simulated"):
        _save(tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config)
    assert _snapshot(tiny_bundle_copy) == before
    assert _leftovers(tiny_bundle_copy.parent) == []
    load_bundle(tiny_bundle_copy)


def test_failed_save_into_a_new_place_leaves_nothing(
    fresh_model, tiny_tokenizer, tiny_model_config, tmp_path, monkeypatch
):
    monkeypatch.setattr(tiny_tokenizer, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path / "models" / "new", fresh_model, tiny_tokenizer, tiny_model_config)
    assert list((tmp_path / "models").iterdir()) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_overwrite_replaces_the_whole_bundle(
    tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config, monkeypatch, exchange
):
    if not exchange:
        monkeypatch.setattr(atomic_module, "_exchange", lambda a, b: False)
    (tiny_bundle_copy / "stale.txt").write_text("from the old bundle")
    old_version = read_meta(tiny_bundle_copy)["version"]
    _save(tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config, threshold=0.25)
    meta = read_meta(tiny_bundle_copy)
    assert meta["threshold"] == 0.25 and meta["weights_sha256"] == sha256_file(tiny_bundle_copy / WEIGHTS_FILE)
    assert meta["version"] != old_version or meta["weights_sha256"] != sha256_file(tiny_bundle_copy / "stale.txt")
    assert not (tiny_bundle_copy / "stale.txt").exists()
    assert _leftovers(tiny_bundle_copy.parent) == []


def test_exchange_is_available_here(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("a"), (b / "x").write_text("b")
    if not atomic_module._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not supported on this platform/filesystem")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_crash_between_renames_puts_the_old_bundle_back(
    tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config, monkeypatch
):
    before = _snapshot(tiny_bundle_copy)
    monkeypatch.setattr(atomic_module, "_exchange", lambda a, b: False)
    real_replace = os.replace

    def fail_moving_the_new_one_in(src, dst):
        if ".partial-" in Path(src).name and not Path(src).name.endswith("-old"):  # the new one, not the rollback
            raise OSError("rename failed (simulated)")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_moving_the_new_one_in)
    with pytest.raises(OSError, match="simulated"):
        _save(tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config)
    monkeypatch.undo()
    assert _snapshot(tiny_bundle_copy) == before
    assert _leftovers(tiny_bundle_copy.parent) == []


def test_readers_never_see_a_missing_or_partial_bundle_during_overwrites(
    tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config
):
    if not atomic_module._exchange(tiny_bundle_copy, tiny_bundle_copy):
        pytest.skip("no atomic directory exchange on this platform")
    errors, done = [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                read_meta(tiny_bundle_copy)
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for threshold in (0.1, 0.2, 0.3):
            _save(tiny_bundle_copy, fresh_model, tiny_tokenizer, tiny_model_config, threshold=threshold)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert read_meta(tiny_bundle_copy)["threshold"] == 0.3


# --- what a trained bundle records ------------------------------------------------------------------------


def test_bundle_metadata(tiny_bundle, tiny_model_config):
    meta = read_meta(tiny_bundle)
    assert meta["variant"] == "fp32"
    assert 0.0 <= meta["threshold"] <= 1.0
    assert meta["weights_sha256"] == sha256_file(tiny_bundle / WEIGHTS_FILE)
    assert meta["size_bytes"] == (tiny_bundle / WEIGHTS_FILE).stat().st_size
    assert meta["model_config"] == tiny_model_config.model_dump()
    assert meta["train_config"]["max_steps"] == 10
    assert meta["labels"] == {"0": "real", "1": "fake"}
    assert meta["version"].endswith(meta["weights_sha256"][:8])


def test_lineage_records_the_given_lineage_and_the_encoder(tiny_bundle, tiny_encoder_dir):
    lineage = json.loads((tiny_bundle / "lineage.json").read_text())
    assert lineage["sources"] == [{"uri": "synthetic://tiny", "sha256": "0" * 64}]
    assert lineage["encoder"] == str(tiny_encoder_dir)
    assert load_bundle(tiny_bundle).lineage == lineage


def test_metrics_have_val_and_test(tiny_bundle, tiny_frames):
    metrics = json.loads((tiny_bundle / "metrics.json").read_text())
    for split in ("val", "test"):
        m = metrics[split]
        assert m["n"] == len(tiny_frames[split])
        for key in ("accuracy", "macro_f1", "roc_auc", "pr_auc", "ece"):
            assert 0.0 <= m[key] <= 1.0, (split, key)
        assert np.asarray(m["confusion_matrix"]).sum() == len(tiny_frames[split])


def test_heldout_table_plots_and_training_record(tiny_bundle, tiny_frames):
    heldout = pd.read_csv(tiny_bundle / "heldout_test.csv", dtype={"id": str})
    assert list(heldout.columns) == ["id", "title", "label"]
    assert heldout["id"].tolist() == tiny_frames["test"]["id"].tolist()
    assert heldout["label"].tolist() == tiny_frames["test"]["label"].tolist()
    plots = sorted(p.name for p in (tiny_bundle / "plots").glob("*.png"))
    assert {"confusion_matrix.png", "roc_curve.png"} <= set(plots)
    training = json.loads((tiny_bundle / "training.json").read_text())
    assert training["steps"] == 10 and training["precision"] == "32-true"
    assert not (tiny_bundle / "checkpoints").exists()
