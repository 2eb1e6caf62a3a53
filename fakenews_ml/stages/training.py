"""trained_model: train (or reuse) a bundle for exactly these tokens and settings, and check it is sane."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from pydantic import BaseModel

from fakenews_ml.artifacts import content_key, load_frame, load_tokenized
from fakenews_ml.bundle import load_bundle, read_json, read_meta
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import ModelConfig, TrainConfig
from fakenews_ml.data.sources import sha256_file
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.device import resolve_precision
from fakenews_ml.environment import artifact_store
from fakenews_ml.errors import BundleError
from fakenews_ml.manifests import NewsSplits, SplitMetrics, TokenizedNews, TrainedModel, TrainingSummary
from fakenews_ml.model.datamodule import make_loader
from fakenews_ml.model.encoder import load_tokenizer
from fakenews_ml.registry import MODELS, champion_lineage
from fakenews_ml.store import join
from fakenews_ml.train import train_model

CODE_VERSION = code_version(__name__)
SANITY_ROWS = 64
log = logging.getLogger(__name__)


def model_config_for(tokenized: TokenizedNews, pooling: str = "mean", dropout: float = 0.1) -> ModelConfig:
    """The model configuration that matches the tokens: same encoder, same token budget."""
    return ModelConfig(encoder=tokenized.encoder, max_length=tokenized.max_length, pooling=pooling, dropout=dropout)


def training_key(tokenized: TokenizedNews, model_config: ModelConfig, train_config: TrainConfig) -> str:
    """Everything that changes the trained weights: the tokens, the model and training settings (with the
    precision actually used), and the training code's version. Progress bars and thread counts do not."""
    # devices and num_nodes change the result (how many processes share each batch and draw dropout);
    # how the processes are started (strategy) does not
    settings = train_config.model_dump(exclude={"progress_bar", "num_threads", "strategy"})
    settings["precision"] = resolve_precision(train_config.precision, train_config.accelerator)
    return content_key(tokenized.fingerprint, model_config.model_dump(), settings, CODE_VERSION)


def bundle_manifest(location: str, **extra) -> TrainedModel:
    """What downstream steps and the UI need to know about the bundle at ``location``, from its own files."""
    path = artifact_store().fetch(location)
    meta, metrics, lineage = read_meta(path), read_json(path, "metrics"), read_json(path, "lineage")
    training = read_json(path, "training")
    return TrainedModel(
        code_version=lineage.get("code_version") or "unknown",
        bundle=location,
        version=meta["version"],
        cache_key=lineage.get("cache_key") or path.name,
        weights_sha256=meta["weights_sha256"],
        size_bytes=meta["size_bytes"],
        threshold=meta["threshold"],
        architecture=ModelConfig(**meta["model_config"]),
        hyperparameters=meta.get("train_config", {}),
        metrics=SplitMetrics(val=metrics.get("val") or None, test=metrics.get("test") or None),
        training=TrainingSummary(**{k: v for k, v in training.items() if k in TrainingSummary.model_fields}),
        plots={p.stem: join(location, "plots", p.name) for p in sorted((path / "plots").glob("*.png"))},
        wandb_run=read_json(path, "wandb_run") or None,  # written after training when W&B was on
        **extra,
    )


def _reusable(location: str, key: str) -> TrainedModel | None:
    """The manifest of a complete, intact bundle trained for ``key``; None when it must be (re)trained."""
    path = artifact_store().path(location)
    try:
        meta = read_meta(path)
        if read_json(path, "lineage").get("cache_key") != key:
            return None
        if sha256_file(path / "model.safetensors") != meta["weights_sha256"]:
            log.warning("bundle %s does not match its checksum: retraining it", location)
            return None
        return bundle_manifest(location, reused=True)
    except (BundleError, ValueError, OSError):
        return None


def training_lineage(key: str, tokenized: TokenizedNews, splits: NewsSplits, search: dict | None = None) -> dict:
    """The one lineage format every bundle carries (the CLI and the asset graph write the same). ``search``
    names the hyperparameter study and trial whose parameters were used (``stages.search.search_lineage``)."""
    return {
        "cache_key": key,
        "code_version": CODE_VERSION,
        "tokenized": tokenized.model_dump(include={"fingerprint", "encoder_label", "max_length", "tokenizer_digest"}),
        "splits": {
            name: file.model_dump(include={"rows", "fingerprint", "digest"}) for name, file in splits.splits.items()
        },
        "sources": [source.model_dump() for source in splits.sources],
        "feedback": splits.feedback.model_dump(),
        "parent": champion_lineage(),
        "hyperparameter_search": search,
    }


def train_or_reuse(
    tokenized: TokenizedNews,
    splits: NewsSplits,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    make_logger: Callable[[str], object] | None = None,
    search: dict | None = None,
) -> TrainedModel:
    """Train a bundle at ``models/<key>`` in the store, or return the intact one already there.

    ``make_logger(key)`` builds a Lightning logger, and is called only when training actually happens.
    ``search`` (the study and trial the hyperparameters came from) goes into the lineage."""
    if (model_config.encoder, model_config.max_length) != (tokenized.encoder, tokenized.max_length):
        raise ValueError(
            f"model config (encoder {model_config.encoder!r}, max_length {model_config.max_length}) does not match "
            f"the tokens (encoder {tokenized.encoder!r}, max_length {tokenized.max_length})"
        )
    key = training_key(tokenized, model_config, train_config)
    location = join(MODELS, key)
    reused = _reusable(location, key)
    if reused is not None:
        return reused
    store = artifact_store()
    result = train_model(
        load_tokenized(tokenized),
        load_tokenizer(model_config),
        model_config,
        train_config,
        store.path(location),
        lineage=training_lineage(key, tokenized, splits, search),
        logger=make_logger(key) if make_logger else None,
        work_dir=store.path(join("runs", key)),
        heldout=load_frame(splits.splits["test"]),
        titles={name: load_frame(splits.splits[name])["title"].astype(str).tolist() for name in tokenized.splits},
    )
    store.publish(location)
    return bundle_manifest(location, reused=False, seconds=round(result.seconds, 1))


class SanityCheck(BaseModel):
    passed: bool
    nonfinite_values: int
    nonfinite_tensors: list[str]
    parameters: int
    output_shape: list[int]
    expected_shape: list[int]
    finite_outputs: bool
    prob_min: float | None
    prob_max: float | None
    probabilities_sum_to_one: bool
    probe_rows: int


@torch.inference_mode()
def check_model_sanity(trained: TrainedModel, tokenized: TokenizedNews, rows: int = SANITY_ROWS) -> SanityCheck:
    """Finite weights, logits of shape (n, 2), probabilities in [0, 1] summing to 1, on validation rows."""
    store = artifact_store()
    bundle = load_bundle(store.fetch(trained.bundle))  # also verifies the weights' checksum
    probe = TokenizedSplit.load(store.fetch(tokenized.splits["val"].location))
    state = bundle.model.state_dict()
    bad = {
        name: int((~torch.isfinite(t)).sum())
        for name, t in state.items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    }
    n_params = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor) and t.is_floating_point())
    n = min(rows, len(probe))
    subset = TokenizedSplit(
        probe.input_ids[: probe.offsets[n]], probe.offsets[: n + 1], probe.labels[:n], probe.ids[:n]
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
    return SanityCheck(
        passed=not bad and shape_ok and finite_out and in_range and sums_to_one,
        nonfinite_values=sum(bad.values()),
        nonfinite_tensors=sorted(bad)[:5],
        parameters=int(n_params),
        output_shape=list(logits.shape),
        expected_shape=[len(subset), 2],
        finite_outputs=finite_out,
        prob_min=float(np.nanmin(probs)) if probs.size else None,
        prob_max=float(np.nanmax(probs)) if probs.size else None,
        probabilities_sum_to_one=sums_to_one,
        probe_rows=len(subset),
    )
