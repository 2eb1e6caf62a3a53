"""Batched inference over tokenized rows: length-sorted batches, each padded only to its own longest row."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from fakenews_ml.data.tokenize import TokenizedSplit


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    """bf16 autocast where asked for (bf16 variant, or bf16-mixed training), else a no-op."""
    if dtype == torch.bfloat16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def padded_batches(split: TokenizedSplit, pad_token_id: int, batch_size: int):
    """Length-sorted batches, each padded to its own longest row. Plain numpy rather than a DataLoader:
    a DataLoader costs about a millisecond per call, which a served single headline would feel."""
    lengths = split.lengths()
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        row_lengths = lengths[rows]
        columns = np.arange(int(row_lengths.max()))
        mask = columns[None, :] < row_lengths[:, None]
        input_ids = np.full(mask.shape, pad_token_id, dtype=np.int64)
        input_ids[mask] = split.input_ids[(split.offsets[rows][:, None] + columns[None, :])[mask]]
        yield {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
            "index": torch.from_numpy(rows),
        }


@torch.inference_mode()
def embed_rows(
    model, split: TokenizedSplit, pad_token_id: int, batch_size: int = 64, autocast_dtype=None
) -> np.ndarray:
    """The model's pooled sentence vectors (float32, one row per input row, in order)."""
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    out = None
    for batch in padded_batches(split, pad_token_id, batch_size):
        with autocast_for(device, autocast_dtype):
            vectors = (
                model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu().numpy()
            )
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
    return probs_and_embeddings(model, split, pad_token_id, batch_size, autocast_dtype, progress)[0]


@torch.inference_mode()
def probs_and_embeddings(
    model: torch.nn.Module,
    split: TokenizedSplit,
    pad_token_id: int,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
    progress=None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """P(fake) for every row, and the pooled embeddings when ``model`` returns them beside its logits
    (``classifier.WithEmbedding``, traced or not; else None), both in the split's own row order."""
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    probs = np.empty(len(split), dtype=np.float32)
    embeddings = None
    for batch in padded_batches(split, pad_token_id, batch_size):
        with autocast_for(device, autocast_dtype):
            output = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        index = batch["index"].numpy()
        if isinstance(output, (tuple, list)):
            output, pooled = output
            if embeddings is None:
                embeddings = np.empty((len(split), pooled.shape[1]), dtype=np.float32)
            embeddings[index] = pooled.float().cpu().numpy()
        probs[index] = torch.softmax(output.float(), dim=-1)[:, 1].cpu().numpy()
        if progress is not None:
            progress(len(batch["index"]))
    return probs, embeddings
