"""Model loading without alarming library noise that a user cannot act on: torch's deprecation notice for the
quantized tensors every int8 load builds, and transformers' informational warnings. Only while loading;
everything else (training, a user's own code) keeps its warnings."""

from __future__ import annotations

import contextlib
import warnings

# What loading a bundle is known to print and nobody reading it can fix (the bundle is fine).
_IGNORED = (
    (UserWarning, r".*quantize_per_tensor, torch\.quantize_per_channel.*deprecated"),
    (UserWarning, r".*TypedStorage is deprecated"),
    (FutureWarning, r".*"),
    (DeprecationWarning, r".*"),
)


@contextlib.contextmanager
def quiet_loading():
    """Inside: the warnings above are not shown and transformers logs errors only."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            for category, message in _IGNORED:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        hf_logging.set_verbosity(level)
