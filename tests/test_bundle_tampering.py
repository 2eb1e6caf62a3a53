"""Broken and tampered bundles: every kind is one BundleError naming the file (and, from the CLI, one line with
exit code 2), never a traceback; and no name read from a bundle's files leads out of the bundle."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from fakenews_ml.bundle import LEXICAL_FILE, WEIGHTS_FILE, load_bundle, read_meta
from fakenews_ml.cli import main
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.errors import BundleError
from fakenews_ml.predict import Predictor, variant_path


def meta_of(bundle: Path) -> dict:
    return json.loads((bundle / "bundle.json").read_text())


def write_meta(bundle: Path, meta) -> None:
    (bundle / "bundle.json").write_text(json.dumps(meta))


def resign(bundle: Path) -> None:
    """Update the checksums to the files as they are now: a tamperer who can write files can do this too."""
    meta = meta_of(bundle)
    meta["weights_sha256"] = sha256_file(bundle / WEIGHTS_FILE)
    if (bundle / LEXICAL_FILE).exists():
        meta["lexical_sha256"] = sha256_file(bundle / LEXICAL_FILE)
    write_meta(bundle, meta)


def refused_everywhere(bundle: Path, *fragments: str, capsys=None) -> str:
    """The error, the same from load_bundle and Predictor.from_path, and one line with exit 2 from the CLI."""
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message and len(message) < 1200
    with pytest.raises(BundleError):
        Predictor.from_path(bundle, "fp32")
    if capsys is not None:
        capsys.readouterr()
        code = main(["predict", "--model", str(bundle), "--variant", "fp32", "A headline"])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == ""
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
        assert captured.err.startswith("fakenews predict: error: ")
    return message


# --- bundle.json ------------------------------------------------------------------------------------------

META_CHANGES = {
    "non-numeric threshold": ({"threshold": "abc"}, "threshold"),
    "threshold as a string": ({"threshold": "0.5"}, "threshold"),
    "threshold as a boolean": ({"threshold": True}, "threshold"),
    "threshold not a number": ({"threshold": math.nan}, "threshold"),
    "threshold out of range": ({"threshold": 7}, "threshold"),
    "unknown key": ({"run_this": "rm -rf /"}, "run_this: unknown key"),
    "unknown variant": ({"variant": "../../etc"}, "variant"),
    "bad checksum format": ({"weights_sha256": "abc"}, "weights_sha256"),
    "version with a path": ({"version": "../../outside"}, "version"),
    "negative size": ({"size_bytes": -1}, "size_bytes"),
    "unknown model_config key": ({"model_config": {"encoder": None, "evil": 1}}, "evil"),
    "impossible max_length": ({"model_config": {"max_length": 0}}, "max_length"),
    "blend of strings": ({"blend": {"transformer": "x", "lexical": 1.0, "bias": 0.0}}, "blend.transformer"),
    "blend with an extra key": ({"blend": {"transformer": 1.0, "lexical": 1.0, "bias": 0.0, "x": 1}}, "blend.x"),
    "labels not a map": ({"labels": ["real", "fake"]}, "labels"),
    "format version as text": ({"format_version": "1"}, "bundle format '1' is not supported"),
}


@pytest.mark.parametrize("changes, fragment", list(META_CHANGES.values()), ids=list(META_CHANGES))
def test_tampered_bundle_json_is_refused(tiny_bundle_copy, changes, fragment, capsys):
    write_meta(tiny_bundle_copy, {**meta_of(tiny_bundle_copy), **changes})
    with pytest.raises(BundleError, match="bundle.json") as info:
        read_meta(tiny_bundle_copy)
    assert fragment in str(info.value)
    refused_everywhere(tiny_bundle_copy, "bundle.json", fragment, capsys=capsys)


@pytest.mark.parametrize("key", ["weights_sha256", "version", "threshold", "variant", "model_config"])
def test_a_missing_key_is_named(tiny_bundle_copy, key):
    meta = meta_of(tiny_bundle_copy)
    del meta[key]
    write_meta(tiny_bundle_copy, meta)
    refused_everywhere(tiny_bundle_copy, f"{key}: Field required")


def test_a_blend_without_its_checksum_is_refused(tiny_bundle_copy):
    meta = meta_of(tiny_bundle_copy)
    assert meta["blend"] is not None  # the tiny bundle blends in the lexical model
    del meta["lexical_sha256"]
    write_meta(tiny_bundle_copy, meta)
    refused_everywhere(tiny_bundle_copy, "no lexical_sha256")


@pytest.mark.parametrize("content", ["[]", '"a string"', "{not json", "", "\x00\xff"])
def test_bundle_json_that_is_not_an_object(tiny_bundle_copy, content, capsys):
    (tiny_bundle_copy / "bundle.json").write_text(content, encoding="latin-1")
    refused_everywhere(tiny_bundle_copy, "bundle.json", capsys=capsys)


def test_bundles_written_today_still_load(tiny_bundle, tiny_model_config, tiny_tokenizer, tmp_path):
    import torch

    from fakenews_ml.bundle import save_bundle
    from fakenews_ml.model.classifier import HeadlineClassifier

    torch.manual_seed(0)
    model = HeadlineClassifier.from_pretrained(tiny_model_config).eval()
    plain = save_bundle(
        tmp_path / "plain", model, tiny_tokenizer, model.encoder.config, tiny_model_config, threshold=0.4,
        metrics={}, lineage={},
    )  # fmt: skip
    for path in (tiny_bundle, plain):  # with and without the lexical blend
        on_disk = meta_of(path)
        meta = read_meta(path)
        assert {k: meta[k] for k in on_disk} == on_disk  # the dict callers get is the file, as written
        assert load_bundle(path).version == meta["version"]


# --- weights whose checksum matches but which do not fit ----------------------------------------------------


def _rewrite_weights(bundle: Path, change) -> None:
    tensors = load_file(str(bundle / WEIGHTS_FILE))
    change(tensors)
    save_file(tensors, str(bundle / WEIGHTS_FILE))
    resign(bundle)


WEIGHT_CHANGES = {
    "a tensor missing": lambda t: t.pop("head.weight"),
    "an extra tensor": lambda t: t.update({"backdoor.weight": t["head.bias"].clone()}),
    "a wrong shape": lambda t: t.update({"head.weight": t["head.weight"].new_zeros(3, t["head.weight"].shape[1])}),
    "a renamed tensor": lambda t: t.update({"head.weights": t.pop("head.weight")}),
}


@pytest.mark.parametrize("change", list(WEIGHT_CHANGES.values()), ids=list(WEIGHT_CHANGES))
def test_signed_weights_that_do_not_fit_the_config(tiny_bundle_copy, change, capsys):
    _rewrite_weights(tiny_bundle_copy, change)
    refused_everywhere(tiny_bundle_copy, WEIGHTS_FILE, "does not fit encoder/config.json", capsys=capsys)


def test_signed_garbage_weights(tiny_bundle_copy, capsys):
    (tiny_bundle_copy / WEIGHTS_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage}" + os.urandom(64))
    resign(tiny_bundle_copy)
    refused_everywhere(tiny_bundle_copy, WEIGHTS_FILE, capsys=capsys)


# --- encoder config, tokenizer and lexical files -------------------------------------------------------------


def _edit_encoder_config(bundle: Path, **changes) -> None:
    path = bundle / "encoder" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


ENCODER_CHANGES = {
    "wider hidden size": ({"hidden_size": 64}, WEIGHTS_FILE),
    "more layers": ({"num_hidden_layers": 3}, WEIGHTS_FILE),
    "fewer embeddings than tokens": ({"vocab_size": 100}, WEIGHTS_FILE),
    "unknown model type": ({"model_type": "no-such-architecture"}, "encoder/config.json"),
    "fewer positions than max_length": ({"max_position_embeddings": 16}, "positions"),
    "heads that do not divide": ({"num_attention_heads": 5}, "encoder/config.json"),
}


@pytest.mark.parametrize("changes, fragment", list(ENCODER_CHANGES.values()), ids=list(ENCODER_CHANGES))
def test_an_encoder_config_that_does_not_match_the_weights(tiny_bundle_copy, changes, fragment, capsys):
    _edit_encoder_config(tiny_bundle_copy, **changes)
    refused_everywhere(tiny_bundle_copy, fragment, capsys=capsys)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"model_type": 5}', ""])
def test_garbage_encoder_config(tiny_bundle_copy, content, capsys):
    (tiny_bundle_copy / "encoder" / "config.json").write_text(content)
    refused_everywhere(tiny_bundle_copy, "encoder/config.json", capsys=capsys)


def _tokenizer_files(bundle: Path) -> list[Path]:
    return sorted(p for p in (bundle / "tokenizer").iterdir() if p.is_file())


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "every file"])
@pytest.mark.parametrize("garbage", [b"{not json", b"\x00\x01\x02" * 50, b'{"model": {"type": "Nope"}}'])
def test_garbage_tokenizer_files(tiny_bundle_copy, name, garbage, capsys):
    files = _tokenizer_files(tiny_bundle_copy)
    targets = files if name == "every file" else [tiny_bundle_copy / "tokenizer" / name]
    assert all(path in files for path in targets), files
    for path in targets:
        path.write_bytes(garbage)
    refused_everywhere(tiny_bundle_copy, "tokenizer", capsys=capsys)


def test_an_empty_tokenizer_folder(tiny_bundle_copy, capsys):
    for path in _tokenizer_files(tiny_bundle_copy):
        path.unlink()
    refused_everywhere(tiny_bundle_copy, "tokenizer", capsys=capsys)


def test_a_tokenizer_with_more_tokens_than_the_embedding(tiny_bundle_copy, capsys):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bundle_copy / "tokenizer"))
    tokenizer.add_tokens([f"newtoken{i}" for i in range(5)])
    tokenizer.save_pretrained(str(tiny_bundle_copy / "tokenizer"))
    refused_everywhere(tiny_bundle_copy, "the tokenizer has", "embeds only", capsys=capsys)


LEXICAL_CHANGES = {
    "garbage": lambda path: path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"),
    "a tensor missing": lambda path: save_file(
        {k: v for k, v in load_file(str(path)).items() if k != "lexical.idf"}, str(path)
    ),
    "wrong sizes": lambda path: save_file(
        {**load_file(str(path)), "lexical.coef": load_file(str(path))["lexical.coef"][:10].clone()}, str(path)
    ),
    "unknown scheme": lambda path: save_file(
        {**load_file(str(path)), "lexical.scheme": load_file(str(path))["lexical.scheme"] * 0 + 9}, str(path)
    ),
}


@pytest.mark.parametrize("change", list(LEXICAL_CHANGES.values()), ids=list(LEXICAL_CHANGES))
def test_a_signed_lexical_model_that_does_not_fit(tiny_bundle_copy, change, capsys):
    change(tiny_bundle_copy / LEXICAL_FILE)
    resign(tiny_bundle_copy)
    refused_everywhere(tiny_bundle_copy, LEXICAL_FILE, capsys=capsys)


def test_a_missing_lexical_model(tiny_bundle_copy, capsys):
    (tiny_bundle_copy / LEXICAL_FILE).unlink()
    refused_everywhere(tiny_bundle_copy, LEXICAL_FILE, "missing", capsys=capsys)


@pytest.mark.parametrize("name", ["metrics", "lineage"])
@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_garbage_metrics_or_lineage(tiny_bundle_copy, name, content, capsys):
    (tiny_bundle_copy / f"{name}.json").write_text(content)
    refused_everywhere(tiny_bundle_copy, f"{name}.json", capsys=capsys)


# --- no path from a file escapes the bundle ---------------------------------------------------------------


@pytest.fixture
def quantized_copy(tiny_bundle_copy) -> Path:
    """The tiny bundle with a (copied) bf16 variant folder and a report recommending it."""
    variant = tiny_bundle_copy / "variants" / "bf16"
    shutil.copytree(tiny_bundle_copy, variant, ignore=shutil.ignore_patterns("variants"))
    meta = meta_of(variant)
    write_meta(variant, {**meta, "variant": "fp32"})
    (tiny_bundle_copy / "quantization.json").write_text(json.dumps({"recommended": "bf16"}))
    assert variant_path(tiny_bundle_copy, "auto") == variant
    return tiny_bundle_copy


@pytest.mark.parametrize(
    "recommended",
    ["../../outside", "/etc", "bf16/../../../outside", "..", ".", "variants/bf16", "BF16", 5, ["bf16"], {"a": 1}],
)
def test_a_recommended_variant_is_a_name_never_a_path(quantized_copy, recommended, tmp_path, capsys):
    outside = tmp_path / "outside"
    shutil.copytree(quantized_copy / "variants" / "bf16", outside)  # a loadable bundle outside
    (quantized_copy / "quantization.json").write_text(json.dumps({"recommended": recommended}))
    with pytest.raises(BundleError, match="is not a variant name"):
        variant_path(quantized_copy, "auto")
    with pytest.raises(BundleError, match="quantization.json"):
        Predictor.from_path(quantized_copy, "auto")
    code = main(["predict", "--model", str(quantized_copy), "A headline"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a variant name" in err


@pytest.mark.parametrize("content", ["[]", '"bf16"', "{not json"])
def test_a_quantization_report_that_is_not_an_object(quantized_copy, content):
    (quantized_copy / "quantization.json").write_text(content)
    with pytest.raises(BundleError, match="quantization.json"):
        variant_path(quantized_copy, "auto")


@pytest.mark.parametrize("link", ["variants/bf16", "variants"])
def test_a_variant_folder_that_links_out_of_the_bundle(quantized_copy, tmp_path, link):
    outside = tmp_path / "elsewhere"
    shutil.move(quantized_copy / link, outside)
    (quantized_copy / link).symlink_to(outside, target_is_directory=True)
    for variant in ("auto", "bf16"):
        with pytest.raises(BundleError, match="is a link"):
            variant_path(quantized_copy, variant)


@pytest.mark.parametrize("variant", ["../x", "/etc", "int8/..", "fp16"])
def test_a_variant_argument_is_a_name_never_a_path(quantized_copy, variant):
    with pytest.raises(BundleError, match="is not a variant name"):
        variant_path(quantized_copy, variant)


def test_served_champion_that_is_tampered_keeps_the_old_one_serving(tiny_bundle, tmp_path):
    from fakenews_ml.config import PredictConfig
    from fakenews_ml.serving.model_holder import ModelHolder

    good = Path(shutil.copytree(tiny_bundle, tmp_path / "models" / "good"))
    link = tmp_path / "champion"
    link.symlink_to(good)
    holder = ModelHolder(link, PredictConfig(), "auto")
    assert holder.refresh() and holder.current.version == read_meta(good)["version"]
    tampered = Path(shutil.copytree(tiny_bundle, tmp_path / "models" / "tampered"))
    write_meta(tampered, {**meta_of(tampered), "threshold": "abc", "version": "tampered-1"})
    link.unlink()
    link.symlink_to(tampered)
    assert not holder.refresh()
    assert holder.current.version == read_meta(good)["version"]
    assert holder.reload_error.startswith("could not load tampered: BundleError")
    assert "threshold" in holder.reload_error
    assert str(tmp_path) not in holder.reload_error  # shown on /health: names, no absolute paths
