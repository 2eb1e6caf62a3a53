"""The whole training lifecycle as plain function calls, for the CLI (the Dagster graph calls the same
steps one asset at a time): read -> validate -> split -> tokenize -> train -> bundle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fakenews_ml.config import DataConfig, PipelineConfig, ValidationConfig
from fakenews_ml.data.readers import read_sources
from fakenews_ml.data.splits import SplitResult, fingerprint, split_news
from fakenews_ml.data.tokenize import tokenize_splits
from fakenews_ml.data.validation import raise_if_failed, validate_news
from fakenews_ml.model.encoder import load_tokenizer
from fakenews_ml.registry import champion_lineage
from fakenews_ml.train import TrainResult, train_model

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    frame: pd.DataFrame
    splits: SplitResult
    lineage: dict


def prepare_data(data: DataConfig, validation: ValidationConfig, progress: bool = True) -> PreparedData:
    """Read every source, validate (raises ValidationFailed), dedupe and split (raises LeakageError)."""
    frame, resolved = read_sources(data.sources, progress=progress)
    raise_if_failed(validate_news(frame, validation))
    splits = split_news(frame, data)
    lineage = {
        "sources": [{"uri": src.uri, "sha256": src.sha256} for src in resolved],
        "parent": champion_lineage(),
        "data": {
            "rows_read": len(frame),
            "duplicates_removed": splits.duplicates_removed,
            "conflicting_labels_removed": splits.conflicting_labels_removed,
            "splits": {
                name: {"rows": len(part), "fingerprint": fingerprint(part)} for name, part in splits.frames.items()
            },
            "config": data.model_dump(),
        },
    }
    return PreparedData(frame, splits, lineage)


def train_from_sources(config: PipelineConfig, out_dir: Path | str, logger=None) -> TrainResult:
    prepared = prepare_data(config.data, config.validation, progress=config.train.progress_bar)
    log.info("splits: %s", prepared.splits.sizes())
    tokenizer = load_tokenizer(config.model)
    tokenized = tokenize_splits(prepared.splits.frames, tokenizer, config.model.max_length)
    return train_model(
        tokenized,
        tokenizer,
        config.model,
        config.train,
        out_dir,
        lineage=prepared.lineage,
        logger=logger,
        heldout=prepared.splits.frames["test"],
        titles={name: frame["title"].astype(str).tolist() for name, frame in prepared.splits.frames.items()},
    )
