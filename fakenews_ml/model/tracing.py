"""A TorchScript trace of the classifier's forward pass, for serving.

Why: a MiniLM pass over a few short headlines takes a few milliseconds, and the Python of the eager
Hugging Face modules is about a third of it. The trace runs the same operators from C++ (and without
holding the GIL, so the API's event loop keeps going). It is checked against the eager model on inputs
of other shapes before use; when tracing fails or the outputs differ, the eager model is used instead.
"""

from __future__ import annotations

import logging
import warnings

import torch

log = logging.getLogger(__name__)
TOLERANCE = 1e-4


def _example(pad_token_id: int, lengths: list[int], vocab_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of rows with the given lengths, padded like ``inference.padded_batches`` pads."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = torch.randint(min(1000, vocab_size - 1), vocab_size, (len(lengths), width), generator=generator)
    return ids.masked_fill(mask == 0, pad_token_id), mask


@torch.inference_mode()
def trace_classifier(model: torch.nn.Module, pad_token_id: int) -> torch.nn.Module:
    """``model`` traced and frozen, or ``model`` itself when the trace cannot be trusted."""
    model.eval()
    vocab_size = int(model.encoder.config.vocab_size)
    # Traced on a padded batch: the attention-mask path must be recorded, not optimised away.
    example = _example(pad_token_id, [7, 4, 2], vocab_size, seed=0)
    checks = [
        _example(pad_token_id, lengths, vocab_size, seed=i)
        for i, lengths in enumerate([[5], [9, 9], [12, 3, 30, 1]], 1)
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values, checked below
            traced = torch.jit.freeze(torch.jit.trace(model, example, check_trace=False))
        for ids, mask in checks:
            difference = _difference(traced(ids, mask), model(ids, mask))
            if not difference <= TOLERANCE:
                raise ValueError(f"traced logits differ from the eager model's by {difference:.2g}")
    except Exception as exc:  # any failure: serve the eager model, which is always right
        log.warning("serving the eager model: tracing failed (%s)", exc)
        return model
    return traced


def _difference(traced, eager) -> float:
    """The largest absolute difference between two outputs (a tensor, or a tuple of logits and embedding:
    the embedding compared relative to its own scale)."""
    if isinstance(eager, torch.Tensor):
        return float((traced - eager).abs().max())
    return max(
        float((t - e).abs().max()) / (1.0 if i == 0 else max(1.0, float(e.abs().max())))
        for i, (t, e) in enumerate(zip(traced, eager, strict=True))
    )
