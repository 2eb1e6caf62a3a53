"""Model bundles: one self-contained directory per model (or per quantized variant).

    model.safetensors   weights (tensors only: loading never unpickles)
    lexical.safetensors the TF-IDF + logistic regression half (when the bundle blends one in)
    encoder/config.json the encoder architecture
    tokenizer/          the fast tokenizer
    bundle.json         version, variant, decision threshold, model/train config
    metrics.json        held-out metrics
    lineage.json        data sources and hashes, code version, parent bundle
    domain.safetensors  the out-of-domain profile (embedding mean, shrunk precision, threshold)
    plots/              confusion matrix, ROC (PNG)

A bundle is written into a staging sibling and renamed into place (``fakenews_ml.atomic.atomic_dir``), so a
crash never leaves a half-written bundle where a reader would find it.

Reading trusts nothing in the folder: ``bundle.json`` is validated by a strict model (``BundleMeta``: known
keys only, typed values, checksums present), every other file is loaded inside a guard that turns any
failure into one ``BundleError`` naming the file, and the pieces are checked against each other (weights
against the encoder config, tokenizer against the embedding, token budget against the position table).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import load_file, save_file

from fakenews_ml.atomic import atomic_dir
from fakenews_ml.config import ModelConfig
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.errors import BundleError
from fakenews_ml.model import weights as weight_codec
from fakenews_ml.model.classifier import HeadlineClassifier
from fakenews_ml.model.domain import DOMAIN_FILE, DomainProfile, load_domain, save_domain
from fakenews_ml.model.lexical import LexicalModel

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
LEXICAL_FILE = "lexical.safetensors"
HELDOUT_TABLE = "heldout_test"  # the frozen test rows the bundle was scored on
CALIBRATION_TABLE = "calibration_titles"  # a sample of train titles, for int8 smoothing
REQUIRED = (WEIGHTS_FILE, "bundle.json", "encoder/config.json", "tokenizer")
_SHA256 = r"^[0-9a-f]{64}$"


class BlendWeights(BaseModel):
    """How the transformer's and the lexical model's log-odds are combined (``lexical.fit_blend``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    transformer: float = Field(allow_inf_nan=False)
    lexical: float = Field(allow_inf_nan=False)
    bias: float = Field(allow_inf_nan=False)


class BundleMeta(BaseModel):
    """``bundle.json``, exactly as ``save_bundle`` writes it: unknown keys, missing checksums and values of
    the wrong type are refused (strict: no "0.5" for 0.5, no true for 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    format_version: Literal[1]
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
    created_at: str
    variant: Literal["fp32", "bf16", "int8", "pruned", "pruned_int8"]
    threshold: float = Field(ge=0, le=1, allow_inf_nan=False)
    labels: dict[str, str]
    weights_sha256: str = Field(pattern=_SHA256)
    size_bytes: int = Field(ge=0)
    # named model_config on disk, which Pydantic reserves for itself
    model_settings: dict[str, Any] = Field(alias="model_config")
    train_config: dict[str, Any] = Field(default_factory=dict)
    blend: BlendWeights | None = None
    lexical_sha256: str | None = Field(None, pattern=_SHA256)
    domain_sha256: str | None = Field(None, pattern=_SHA256)

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True)


@dataclass
class LoadedBundle:
    path: Path
    model: torch.nn.Module
    tokenizer: object
    meta: dict
    metrics: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)
    lexical: LexicalModel | None = None  # the TF-IDF half, blended with the transformer's output
    domain: DomainProfile | None = None  # the out-of-domain profile (bundles trained before it have none)

    @property
    def version(self) -> str:
        """The champion's version: a quantized variant answers with the version of the bundle it was made from
        (one name for one model everywhere; ``variant`` tells them apart). Variants written before they carried
        it in ``bundle.json`` name it in their lineage."""
        return (self.lineage.get("variant_of") or {}).get("version") or self.meta["version"]

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
    domain: DomainProfile | None = None,
    version: str | None = None,
) -> Path:
    """Write a complete bundle to ``out_dir`` atomically; returns its path. ``lexical`` and
    ``blend_weights`` add the TF-IDF half of the classifier (``lexical.safetensors``); ``domain`` the
    out-of-domain profile (``domain.safetensors``). ``version`` is given for a quantized variant (its bundle's
    version: one model, one name); a new model gets a new one."""
    out_dir = Path(out_dir).expanduser().resolve()
    with atomic_dir(out_dir, existing="replace") as staging:
        tensors = weight_codec.pack(model, variant)
        save_file(tensors, str(staging / WEIGHTS_FILE))
        digest = sha256_file(staging / WEIGHTS_FILE)
        if lexical is not None:
            save_file(lexical.tensors(), str(staging / LEXICAL_FILE))
        if domain is not None:
            save_domain(domain, staging)
        encoder_config.save_pretrained(str(staging / "encoder"))
        tokenizer.save_pretrained(str(staging / "tokenizer"))
        created = datetime.now(UTC)
        meta = {
            "format_version": FORMAT_VERSION,
            "version": version or f"{created:%Y%m%d-%H%M%S}-{digest[:8]}",
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
            "domain_sha256": sha256_file(staging / DOMAIN_FILE) if domain is not None else None,
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
    """``bundle.json`` of a bundle, checked for completeness and validated (``BundleMeta``), without
    loading weights. A dict, in the on-disk layout."""
    return read_bundle_meta(path).to_dict()


def read_bundle_meta(path: Path | str) -> BundleMeta:
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such model bundle directory")
    missing = [name for name in REQUIRED if not (path / name).exists()]
    if missing:
        raise BundleError(f"{path} is not a complete model bundle (missing: {', '.join(missing)})")
    try:
        raw = json.loads((path / "bundle.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"{path}: bundle.json is unreadable ({_brief(exc)})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: bundle.json is not a JSON object")
    if raw.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle.json: bundle format {raw.get('format_version')!r} is not supported (expected {FORMAT_VERSION})"
        )
    try:
        meta = BundleMeta.model_validate(raw)
        ModelConfig.model_validate(meta.model_settings)
    except ValidationError as exc:
        raise BundleError(f"{path}: bundle.json is not valid: {_pydantic_problems(exc)}") from None
    if meta.blend is not None and meta.lexical_sha256 is None:
        raise BundleError(f"{path}: bundle.json blends in {LEXICAL_FILE} but has no lexical_sha256 to check it by")
    return meta


def read_json(path: Path | str, name: str) -> dict:
    """A bundle's optional ``<name>.json`` (metrics, lineage) as a dict ({} when absent)."""
    file = Path(path) / f"{name}.json"
    if not file.exists():
        return {}
    with _reading(file, "is not readable JSON"):
        data = json.loads(file.read_text())
    if not isinstance(data, dict):
        raise BundleError(f"{file}: is not a JSON object")
    return data


def load_bundle(path: Path | str, verify: bool = True) -> LoadedBundle:
    """Rebuild the model from config + safetensors (no pickle), with its tokenizer and metadata. Anything
    wrong with a file is a BundleError naming it; nothing is fetched from the network."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(path).expanduser().resolve()
    meta = read_bundle_meta(path)
    if verify and sha256_file(path / WEIGHTS_FILE) != meta.weights_sha256:
        raise BundleError(f"{path}: weights do not match the checksum in bundle.json (corrupt or tampered)")
    model_config = ModelConfig.model_validate(meta.model_settings)
    with _reading(path / "encoder" / "config.json", "is not a usable encoder configuration"):
        encoder_config = AutoConfig.from_pretrained(str(path / "encoder"), local_files_only=True)
        skeleton = HeadlineClassifier.from_encoder_config(encoder_config, model_config)
    positions = getattr(encoder_config, "max_position_embeddings", None)
    if isinstance(positions, int) and model_config.max_length > positions:
        raise BundleError(
            f"{path}: max_length {model_config.max_length} in bundle.json is more than the "
            f"{positions} positions of encoder/config.json"
        )
    with _reading(path / WEIGHTS_FILE, "does not fit encoder/config.json and the variant in bundle.json"):
        model = weight_codec.unpack(skeleton, load_file(str(path / WEIGHTS_FILE)), meta.variant)
    with _reading(path / "tokenizer", "is not a usable tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(str(path / "tokenizer"), local_files_only=True)
        vocabulary = len(tokenizer)
    embedding_rows = getattr(encoder_config, "vocab_size", None)
    if isinstance(embedding_rows, int) and vocabulary > embedding_rows:
        raise BundleError(
            f"{path}: the tokenizer has {vocabulary} tokens but encoder/config.json embeds only {embedding_rows}"
        )
    if tokenizer.pad_token_id is None:
        raise BundleError(f"{path}: the tokenizer has no padding token")
    lexical = None
    if meta.blend is not None:
        lexical_file = path / LEXICAL_FILE
        if not lexical_file.is_file():
            raise BundleError(f"{path}: bundle.json blends in {LEXICAL_FILE}, which is missing")
        if verify and sha256_file(lexical_file) != meta.lexical_sha256:
            raise BundleError(
                f"{path}: {LEXICAL_FILE} does not match the checksum in bundle.json (corrupt or tampered)"
            )
        with _reading(lexical_file, "is not a usable lexical model"):
            lexical = LexicalModel.from_tensors(load_file(str(lexical_file)))
    return LoadedBundle(
        path,
        model,
        tokenizer,
        meta.to_dict(),
        read_json(path, "metrics"),
        read_json(path, "lineage"),
        lexical,
        _load_domain(path, meta, verify, int(getattr(encoder_config, "hidden_size", 0) or 0)),
    )


def _load_domain(path: Path, meta: BundleMeta, verify: bool, hidden_size: int) -> DomainProfile | None:
    """The bundle's out-of-domain profile; None when it has none (trained before there was one)."""
    file = path / DOMAIN_FILE
    if meta.domain_sha256 is None:
        return None
    if not file.is_file():
        raise BundleError(f"{path}: bundle.json names {DOMAIN_FILE}, which is missing")
    if verify and sha256_file(file) != meta.domain_sha256:
        raise BundleError(f"{path}: {DOMAIN_FILE} does not match the checksum in bundle.json (corrupt or tampered)")
    with _reading(file, "is not a usable out-of-domain profile"):
        domain = load_domain(path)
        if hidden_size and domain.mean.shape[0] != hidden_size:
            raise ValueError(f"{domain.mean.shape[0]} dimensions for an encoder of {hidden_size}")
    return domain


@contextmanager
def _reading(file: Path, problem: str) -> Iterator[None]:
    """Any failure inside becomes one BundleError naming ``file``: whatever a tampered or truncated file
    makes a loader raise (transformers, safetensors and torch raise many kinds), never a traceback."""
    try:
        yield
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"{file}: {problem} ({_brief(exc)})") from exc


def _brief(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line (torch's shape errors list every tensor on lines of their own)."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pydantic_problems(exc: ValidationError, most: int = 5) -> str:
    problems = [
        f"{'.'.join(str(p) for p in error['loc']) or 'bundle.json'}: "
        + ("unknown key" if error["type"] == "extra_forbidden" else error["msg"])
        for error in exc.errors()[:most]
    ]
    more = len(exc.errors()) - most
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def bundle_size(path: Path | str) -> int:
    return (Path(path) / WEIGHTS_FILE).stat().st_size


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
