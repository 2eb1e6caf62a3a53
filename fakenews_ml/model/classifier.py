"""``HeadlineClassifier``: encoder -> pooled sentence vector -> dropout -> linear head (2 logits)."""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from fakenews_ml.config import ModelConfig
from fakenews_ml.model.encoder import resolve_encoder


class HeadlineClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, 2)

    @classmethod
    def from_pretrained(cls, config: ModelConfig) -> HeadlineClassifier:
        """The pretrained encoder (its first ``config.encoder_layers`` layers when set: a student) with a new head."""
        source = resolve_encoder(config.encoder)
        encoder_config = truncated(AutoConfig.from_pretrained(source), config.encoder_layers)
        encoder = AutoModel.from_pretrained(source, config=encoder_config, **_no_pooler(encoder_config))
        return cls(encoder, config.pooling, config.dropout)

    @classmethod
    def from_encoder_config(cls, encoder_config: PretrainedConfig, config: ModelConfig) -> HeadlineClassifier:
        """Same architecture with random weights: the skeleton a saved bundle's weights are loaded into (cut to
        the recorded shapes when the encoder was structurally pruned)."""
        from fakenews_ml.model.pruning import PRUNED_SHAPES, shrink_to

        encoder = AutoModel.from_config(encoder_config, **_no_pooler(encoder_config))
        shapes = getattr(encoder_config, PRUNED_SHAPES, None)
        if shapes is not None:
            shrink_to(encoder, shapes)
        return cls(encoder, config.pooling, config.dropout)

    @staticmethod
    def encoder_config(config: ModelConfig) -> PretrainedConfig:
        return AutoConfig.from_pretrained(resolve_encoder(config.encoder))

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled sentence vector: the head's input, and what embedding drift compares."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        # mean over real tokens: what all-MiniLM-L6-v2 was trained to produce
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask))).float()


def truncated(encoder_config: PretrainedConfig, layers: int | None) -> PretrainedConfig:
    """``encoder_config`` with only its first ``layers`` transformer layers (None: unchanged). Loading weights
    into it keeps layers 0..N-1 and leaves the rest out; every encoder family names its depth
    ``num_hidden_layers`` (DistilBERT through an alias)."""
    if layers is None:
        return encoder_config
    available = encoder_config.num_hidden_layers
    if layers > available:
        raise ValueError(f"the encoder has {available} layers: a student cannot keep {layers}")
    encoder_config.num_hidden_layers = layers
    return encoder_config


class WithEmbedding(nn.Module):
    """``classifier``'s forward that also returns the pooled embedding it computed on the way (for the
    out-of-domain score: one pass, not two). Same logits as ``classifier`` in eval mode (dropout is off)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    @property
    def encoder(self) -> nn.Module:
        return self.classifier.encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.classifier.embed(input_ids, attention_mask)
        return self.classifier.head(self.classifier.dropout(pooled)).float(), pooled.float()


def _no_pooler(encoder_config: PretrainedConfig) -> dict:
    """``add_pooling_layer=False`` for encoders that have a pooler (BERT, RoBERTa): the head pools by itself.
    Encoders without one (DistilBERT, DeBERTa) reject the argument, so it is passed only where accepted."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        model_class = MODEL_MAPPING[type(encoder_config)]
    except KeyError:
        return {}
    return (
        {"add_pooling_layer": False}
        if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters
        else {}
    )
