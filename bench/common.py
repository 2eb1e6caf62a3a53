"""Shared by the benchmarks: the same held-out FakeNewsNet headlines, split exactly as training splits them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd
import torch

from fakenews_ml.artifacts import load_frame
from fakenews_ml.config import DataConfig, PipelineConfig
from fakenews_ml.stages.lifecycle import prepare_splits

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FAKENEWS_DATASETS", REPO.parent / "shared" / "datasets"))
FAKENEWSNET = DATASETS / "fakenewsnet_titles.csv"


def split_frames(source: Path = FAKENEWSNET, seed: int = 42) -> dict[str, pd.DataFrame]:
    """The train/val/test frames of the default data config (split seed ``seed``), from the very stage functions
    training runs (and their cache in the artifact store)."""
    splits = prepare_splits(PipelineConfig(data=DataConfig(sources=[str(source)], seed=seed)), progress=False)
    return {name: load_frame(file) for name, file in splits.splits.items()}


def heldout_headlines(n: int, source: Path = FAKENEWSNET) -> pd.DataFrame:
    """``n`` labelled headlines the default training run never saw (its test split, then val)."""
    splits = split_frames(source)
    pool = pd.concat([splits["test"], splits["val"]], ignore_index=True)
    return pool.head(n).reset_index(drop=True)


def train_split(source: Path = FAKENEWSNET) -> pd.DataFrame:
    return split_frames(source)["train"]


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def markdown_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)
