"""The training lifecycle as one call, for the CLI and the benchmarks: the very stage functions the Dagster
assets run, one after the other, with the same cache and the same lineage. Each gate raises instead of
blocking: a failed data suite (ValidationFailed) or a leak between splits (LeakageError) stops it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fakenews_ml.config import ModelConfig, PipelineConfig
from fakenews_ml.data.validation import raise_if_failed
from fakenews_ml.errors import LeakageError
from fakenews_ml.manifests import NewsSplits, TokenizedNews, TrainedModel
from fakenews_ml.stages.ingest import ingest_news
from fakenews_ml.stages.splitting import check_split_leakage, split_validated_news
from fakenews_ml.stages.tokenizing import tokenize_news_splits
from fakenews_ml.stages.training import model_config_for, train_or_reuse
from fakenews_ml.stages.validation import run_validation_suite, stage_validated_news

log = logging.getLogger(__name__)


def prepare_splits(config: PipelineConfig, progress: bool = True) -> NewsSplits:
    """raw_news -> validated_news (suite) -> news_splits (leakage check)."""
    raw = ingest_news(config.data.sources, progress=progress)
    validated = stage_validated_news(raw, config.validation)
    raise_if_failed(run_validation_suite(validated))
    splits = split_validated_news(validated, config.data)
    leakage = check_split_leakage(splits)
    if not leakage.passed:
        raise LeakageError(
            f"normalised titles shared between splits: {leakage.shared_titles} (e.g. {leakage.examples})"
        )
    log.info("splits: %s", {name: file.rows for name, file in splits.splits.items()})
    return splits


def prepare_training_data(config: PipelineConfig, progress: bool = True) -> tuple[NewsSplits, TokenizedNews]:
    """``prepare_splits``, then tokenized_news."""
    splits = prepare_splits(config, progress)
    tokens = ModelConfig(encoder=config.model.encoder, max_length=config.model.max_length)
    return splits, tokenize_news_splits(splits, tokens)


def train_from_sources(config: PipelineConfig, make_logger: Callable[[str], object] | None = None) -> TrainedModel:
    """The whole data side, then ``train_or_reuse``: an unchanged run returns the cached bundle at once."""
    splits, tokenized = prepare_training_data(config, progress=config.train.progress_bar)
    model_config = model_config_for(tokenized, config.model.pooling, config.model.dropout)
    return train_or_reuse(tokenized, splits, model_config, config.train, make_logger=make_logger)
