"""Batched inference over tokenized rows: length-sorted batches, each padded only to its own longest row."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.model.datamodule import make_loader


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    """bf16 autocast where asked for (bf16 variant, or bf16-mixed training), else a no-op."""
    if dtype == torch.bfloat16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batches(split: TokenizedSplit, pad_token_id: int, batch_size: int):
    return make_loader(split, batch_size, pad_token_id, shuffle=False)


@torch.inference_mode()
def embed_rows(model, split: TokenizedSplit, pad_token_id: int, batch_size: int = 64, autocast_dtype=None) -> np.ndarray:
    """The model's pooled sentence vectors (float32, one row per input row, in order)."""
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    out = None
    for batch in _batches(split, pad_token_id, batch_size):
        with autocast_for(device, autocast_dtype):
            vectors = model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu().numpy()
        if out is None:
            out = np.empty((len(split), vectors.shape[1]), dtype=np.float32)
        out[batch["index"].numpy()] = vectors
    return out


@torch.inference_mode()
def predict_probs(
    model: torch.nn.Module,
    split: TokenizedSplit,
    pad_token_id: int,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
    progress=None,
) -> np.ndarray:
    """P(fake) for every row of ``split``, in the split's own row order."""
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    probs = np.empty(len(split), dtype=np.float32)
    for batch in _batches(split, pad_token_id, batch_size):
        with autocast_for(device, autocast_dtype):
            logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        probs[batch["index"].numpy()] = torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()
        if progress is not None:
            progress(len(batch["index"]))
    return probs

