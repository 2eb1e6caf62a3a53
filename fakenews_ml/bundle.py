"""Model bundles: one self-contained directory per model (or per quantized variant).

    model.safetensors   weights (tensors only: loading never unpickles)
    lexical.safetensors the TF-IDF + logistic regression half (when the bundle blends one in)
    encoder/config.json the encoder architecture
    tokenizer/          the fast tokenizer
    bundle.json         version, variant, decision threshold, model/train config
    metrics.json        held-out metrics
    lineage.json        data sources and hashes, code version, parent bundle
    plots/              confusion matrix, ROC (PNG)

A bundle is written into a staging sibling and renamed into place (``fakenews_ml.atomic.atomic_dir``), so a
crash never leaves a half-written bundle where a reader would find it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from fakenews_ml.atomic import atomic_dir
from fakenews_ml.config import ModelConfig
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.errors import BundleError
from fakenews_ml.model import weights as weight_codec
from fakenews_ml.model.classifier import HeadlineClassifier
from fakenews_ml.model.lexical import LexicalModel

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
LEXICAL_FILE = "lexical.safetensors"
HELDOUT_TABLE = "heldout_test"  # the frozen test rows the bundle was scored on
CALIBRATION_TABLE = "calibration_titles"  # a sample of train titles, for int8 smoothing
REQUIRED = (WEIGHTS_FILE, "bundle.json", "encoder/config.json", "tokenizer")


@dataclass
class LoadedBundle:
    path: Path
    model: torch.nn.Module
    tokenizer: object
    meta: dict
    metrics: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)
    lexical: LexicalModel | None = None  # the TF-IDF half, blended with the transformer's output

    @property
    def version(self) -> str:
        return self.meta["version"]

    @property
    def variant(self) -> str:
        return self.meta["variant"]

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(**self.meta["model_config"])


def save_bundle(
    out_dir: Path | str,
    model: torch.nn.Module,
    tokenizer,
    encoder_config,
    model_config: ModelConfig,
    *,
    threshold: float,
    metrics: dict,
    lineage: dict,
    variant: str = "fp32",
    train_config: dict | None = None,
    plots: dict[str, Path] | None = None,
    extra: dict[str, dict] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    lexical: LexicalModel | None = None,
    blend_weights: dict | None = None,
) -> Path:
    """Write a complete bundle to ``out_dir`` atomically; returns its path. ``lexical`` and
    ``blend_weights`` add the TF-IDF half of the classifier (``lexical.safetensors``)."""
    out_dir = Path(out_dir).expanduser().resolve()
    with atomic_dir(out_dir, existing="replace") as staging:
        tensors = weight_codec.pack(model, variant)
        save_file(tensors, str(staging / WEIGHTS_FILE))
        digest = sha256_file(staging / WEIGHTS_FILE)
        if lexical is not None:
            save_file(lexical.tensors(), str(staging / LEXICAL_FILE))
        encoder_config.save_pretrained(str(staging / "encoder"))
        tokenizer.save_pretrained(str(staging / "tokenizer"))
        created = datetime.now(UTC)
        meta = {
            "format_version": FORMAT_VERSION,
            "version": f"{created:%Y%m%d-%H%M%S}-{digest[:8]}",
            "created_at": created.isoformat(timespec="seconds"),
            "variant": variant,
            "threshold": float(threshold),
            "labels": {"0": "real", "1": "fake"},
            "weights_sha256": digest,
            "size_bytes": (staging / WEIGHTS_FILE).stat().st_size,
            "model_config": model_config.model_dump(),
            "train_config": train_config or {},
            "blend": blend_weights if lexical is not None else None,
            "lexical_sha256": sha256_file(staging / LEXICAL_FILE) if lexical is not None else None,
        }
        _write_json(staging / "bundle.json", meta)
        _write_json(staging / "metrics.json", metrics)
        _write_json(staging / "lineage.json", lineage)
        for name, data in (extra or {}).items():
            _write_json(staging / f"{name}.json", data)
        for name, table in (tables or {}).items():
            table.to_csv(staging / f"{name}.csv", index=False)
        if plots:
            (staging / "plots").mkdir()
            for plot in plots.values():
                shutil.copy2(plot, staging / "plots" / Path(plot).name)
    return out_dir


def check_export_target(target: Path | str, overwrite: bool = False) -> Path:
    """``target`` if a bundle may be written there: a new folder in a writable folder, or an existing bundle when
    ``overwrite`` is given. Anything else that exists there is never touched (BundleError, one line)."""
    target = Path(target).expanduser().resolve()
    if target.exists() or target.is_symlink():
        try:
            read_meta(target)
        except BundleError:
            raise BundleError(f"{target} exists and is not a model bundle: choose another folder") from None
        if not overwrite:
            raise BundleError(f"{target} is a model bundle already: pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise BundleError(f"cannot write {target}: {target.parent} is not an existing folder")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise BundleError(f"cannot write {target}: {target.parent} is not writable")
    return target


def export_bundle(source: Path | str, target: Path | str, overwrite: bool = False) -> Path:
    """Copy the bundle at ``source`` to ``target`` in one step (see ``check_export_target``)."""
    read_meta(source)
    target = check_export_target(target, overwrite)
    with atomic_dir(target, existing="replace") as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
    return target


def read_meta(path: Path | str) -> dict:
    """``bundle.json`` of a bundle, checked for completeness, without loading weights."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such model bundle directory")
    missing = [name for name in REQUIRED if not (path / name).exists()]
    if missing:
        raise BundleError(f"{path} is not a complete model bundle (missing: {', '.join(missing)})")
    try:
        meta = json.loads((path / "bundle.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: bundle.json is unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{path}: bundle.json is not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    return meta


def read_json(path: Path | str, name: str) -> dict:
    file = Path(path) / f"{name}.json"
    return json.loads(file.read_text()) if file.exists() else {}


def load_bundle(path: Path | str, verify: bool = True) -> LoadedBundle:
    """Rebuild the model from config + safetensors (no pickle), with its tokenizer and metadata."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(path).expanduser().resolve()
    meta = read_meta(path)
    if verify and sha256_file(path / WEIGHTS_FILE) != meta["weights_sha256"]:
        raise BundleError(f"{path}: weights do not match the checksum in bundle.json (corrupt or tampered)")
    model_config = ModelConfig(**meta["model_config"])
    encoder_config = AutoConfig.from_pretrained(str(path / "encoder"))
    skeleton = HeadlineClassifier.from_encoder_config(encoder_config, model_config)
    model = weight_codec.unpack(skeleton, load_file(str(path / WEIGHTS_FILE)), meta["variant"])
    tokenizer = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
    lexical = None
    if meta.get("blend"):
        if verify and sha256_file(path / LEXICAL_FILE) != meta.get("lexical_sha256"):
            raise BundleError(
                f"{path}: {LEXICAL_FILE} does not match the checksum in bundle.json (corrupt or tampered)"
            )
        try:
            lexical = LexicalModel.from_tensors(load_file(str(path / LEXICAL_FILE)))
        except ValueError as error:
            raise BundleError(f"{path}: {LEXICAL_FILE}: {error}") from error
    return LoadedBundle(path, model, tokenizer, meta, read_json(path, "metrics"), read_json(path, "lineage"), lexical)


def bundle_size(path: Path | str) -> int:
    return (Path(path) / WEIGHTS_FILE).stat().st_size


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
