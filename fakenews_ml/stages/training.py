"""Training steps: train (or reuse) a bundle for exactly these tokens and settings, and check it is sane."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fakenews_ml.artifacts import content_key
from fakenews_ml.bundle import load_bundle, read_json, read_meta
from fakenews_ml.config import ModelConfig, TrainConfig
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.device import resolve_precision
from fakenews_ml.environment import bundles_dir, home_path
from fakenews_ml.errors import BundleError
from fakenews_ml.model.datamodule import make_loader
from fakenews_ml.model.encoder import load_tokenizer
from fakenews_ml.registry import champion_lineage
from fakenews_ml.stages.data import load_split, load_tokenized
from fakenews_ml.train import train_model

log = logging.getLogger(__name__)

SANITY_ROWS = 64


def model_config_for(tokenized: dict, pooling: str = "mean", dropout: float = 0.1) -> ModelConfig:
    """The model configuration that matches the tokens: same encoder, same token budget."""
    return ModelConfig(
        encoder=tokenized["encoder"], max_length=tokenized["max_length"], pooling=pooling, dropout=dropout
    )


def training_key(tokenized: dict, model_config: ModelConfig, train_config: TrainConfig, code_version: str) -> str:
    """Everything that changes the trained weights: the tokens, the model and training settings (with the
    precision actually used), and the training code's version. Progress bars and thread counts do not."""
    settings = train_config.model_dump(exclude={"progress_bar", "num_threads"})
    settings["precision"] = resolve_precision(train_config.precision, train_config.accelerator)
    return content_key(tokenized["fingerprint"], model_config.model_dump(), settings, code_version)


def bundle_manifest(bundle_path: Path | str) -> dict:
    """What downstream steps and the UI need to know about a bundle, read from its own files."""
    path = Path(bundle_path)
    meta = read_meta(path)
    metrics = read_json(path, "metrics")
    training = read_json(path, "training")
    lineage = read_json(path, "lineage")
    return {
        "bundle_path": str(path),
        "version": meta["version"],
        "cache_key": lineage.get("cache_key"),
        "weights_sha256": meta["weights_sha256"],
        "size_bytes": meta["size_bytes"],
        "threshold": meta["threshold"],
        "model_config": meta["model_config"],
        "train_config": meta.get("train_config", {}),
        "metrics": {"val": metrics.get("val", {}), "test": metrics.get("test", {})},
        "training": {
            k: training.get(k) for k in ("precision", "device", "steps", "fit_seconds", "samples_per_second", "history")
        },
        "plots": {p.stem: str(p) for p in sorted((path / "plots").glob("*.png"))},
        "code_version": lineage.get("code_version"),
        "wandb_run": read_json(path, "wandb_run"),  # written after training when W&B was on
    }


def _reusable(bundle_path: Path, key: str) -> dict | None:
    """The manifest of a complete, intact bundle trained for ``key``; None when it must be (re)trained."""
    try:
        meta = read_meta(bundle_path)
    except (BundleError, ValueError, OSError):
        return None
    if read_json(bundle_path, "lineage").get("cache_key") != key:
        return None
    if sha256_file(bundle_path / "model.safetensors") != meta["weights_sha256"]:
        log.warning("bundle %s does not match its checksum: retraining it", bundle_path)
        return None
    return bundle_manifest(bundle_path)


def train_or_reuse(
    tokenized: dict,
    splits: dict,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    code_version: str,
    make_logger: Callable[[str], object] | None = None,
) -> dict:
    """Train a bundle at ``FAKENEWS_HOME/models/<key>``, or return the intact one already there.

    ``make_logger(key)`` builds a Lightning logger, and is called only when training actually happens."""
    if (model_config.encoder, model_config.max_length) != (tokenized["encoder"], tokenized["max_length"]):
        raise ValueError(
            f"model config (encoder {model_config.encoder!r}, max_length {model_config.max_length}) does not match "
            f"the tokens (encoder {tokenized['encoder']!r}, max_length {tokenized['max_length']})"
        )
    key = training_key(tokenized, model_config, train_config, code_version)
    bundle_path = bundles_dir() / key
    reused = _reusable(bundle_path, key)
    if reused is not None:
        return {**reused, "reused": True}
    lineage = {
        "cache_key": key,
        "tokenized": {k: tokenized[k] for k in ("fingerprint", "encoder_label", "max_length", "tokenizer_digest")},
        "splits": {
            name: {k: info[k] for k in ("rows", "fingerprint", "digest")} for name, info in splits["splits"].items()
        },
        "sources": splits.get("sources", []),
        "feedback": splits.get("feedback"),
        "parent": champion_lineage(),
        "asset_code_version": code_version,
    }
    result = train_model(
        load_tokenized(tokenized),
        load_tokenizer(model_config),
        model_config,
        train_config,
        bundle_path,
        lineage=lineage,
        logger=make_logger(key) if make_logger else None,
        work_dir=home_path("runs", key),
        heldout=load_split(splits, "test"),
        titles={name: load_split(splits, name)["title"].astype(str).tolist() for name in tokenized["splits"]},
    )
    return {**bundle_manifest(result.bundle_path), "reused": False, "seconds": round(result.seconds, 1)}


@torch.inference_mode()
def check_model_sanity(bundle_path: Path | str, probe: TokenizedSplit, rows: int = SANITY_ROWS) -> dict:
    """Finite weights, logits of shape (n, 2), probabilities in [0, 1] summing to 1, on ``probe`` rows."""
    bundle = load_bundle(bundle_path)  # also verifies the weights' checksum
    state = bundle.model.state_dict()
    bad = {
        name: int((~torch.isfinite(t)).sum())
        for name, t in state.items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    }
    n_params = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor) and t.is_floating_point())
    subset = TokenizedSplit(
        probe.input_ids[: probe.offsets[min(rows, len(probe))]],
        probe.offsets[: min(rows, len(probe)) + 1],
        probe.labels[:rows],
        probe.ids[:rows],
    )
    logits = torch.cat(
        [
            bundle.model(batch["input_ids"], batch["attention_mask"]).float()
            for batch in make_loader(subset, 32, bundle.tokenizer.pad_token_id, shuffle=False)
        ]
    )
    probs = torch.softmax(logits, dim=-1).numpy()
    shape_ok = tuple(logits.shape) == (len(subset), 2)
    finite_out = bool(np.isfinite(logits.numpy()).all())
    in_range = bool(finite_out and probs.min() >= 0 and probs.max() <= 1)
    sums_to_one = bool(finite_out and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4))
    return {
        "passed": not bad and shape_ok and finite_out and in_range and sums_to_one,
        "nonfinite_values": sum(bad.values()),
        "nonfinite_tensors": sorted(bad)[:5],
        "parameters": int(n_params),
        "output_shape": list(logits.shape),
        "expected_shape": [len(subset), 2],
        "finite_outputs": finite_out,
        "prob_min": float(np.nanmin(probs)) if probs.size else None,
        "prob_max": float(np.nanmax(probs)) if probs.size else None,
        "probabilities_sum_to_one": sums_to_one,
        "probe_rows": len(subset),
    }
