"""tokenized_news: every split through the encoder's fast tokenizer, as ragged int32 arrays (.npz, no pickles)."""

from __future__ import annotations

import hashlib

import numpy as np

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, load_frame
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import ModelConfig
from fakenews_ml.data.splits import SPLITS
from fakenews_ml.data.tokenize import tokenize_frame
from fakenews_ml.manifests import NewsSplits, TokenizedFile, TokenizedNews
from fakenews_ml.model.encoder import encoder_label, load_tokenizer
from fakenews_ml.store import join

CODE_VERSION = code_version(__name__)


def tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tokenize_news_splits(splits: NewsSplits, model_config: ModelConfig) -> TokenizedNews:
    tokenizer = load_tokenizer(model_config)
    digest = tokenizer_digest(tokenizer)
    key = content_key(splits.fingerprint, digest, model_config.max_length, CODE_VERSION)
    location = artifact_location("tokenized_news", key)

    def build(staging) -> TokenizedNews:
        parts = {}
        for name in SPLITS:
            split = tokenize_frame(load_frame(splits.splits[name]), tokenizer, model_config.max_length)
            split.save(staging / f"{name}.npz")
            lengths = split.lengths()
            parts[name] = TokenizedFile(
                location=join(location, f"{name}.npz"),
                rows=len(split),
                mean_tokens=round(float(lengths.mean()), 2) if len(split) else 0.0,
                max_tokens=int(lengths.max()) if len(split) else 0,
                truncated_share=round(float(np.mean(lengths >= model_config.max_length)), 4) if len(split) else 0.0,
            )
        return TokenizedNews(
            code_version=CODE_VERSION,
            key=key,
            fingerprint=key,
            splits=parts,
            encoder=model_config.encoder,
            encoder_label=encoder_label(model_config.encoder),
            max_length=model_config.max_length,
            tokenizer_digest=digest,
            vocab_size=int(tokenizer.vocab_size),
            splits_fingerprint=splits.fingerprint,
        )

    return cached_or_build(location, TokenizedNews, build)
