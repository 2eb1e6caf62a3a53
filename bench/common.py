"""Shared by the benchmarks: the same held-out FakeNewsNet headlines, split exactly as training splits them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd
import torch

from fakenews_ml.config import DataConfig
from fakenews_ml.data.readers import read_sources
from fakenews_ml.data.splits import split_news

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FAKENEWS_DATASETS", REPO.parent / "shared" / "datasets"))
FAKENEWSNET = DATASETS / "fakenewsnet_titles.csv"


def heldout_headlines(n: int, source: Path = FAKENEWSNET) -> pd.DataFrame:
    """``n`` labelled headlines the default training run never saw (its test split, then val)."""
    frame, _ = read_sources([str(source)], progress=False)
    splits = split_news(frame, DataConfig(sources=[str(source)])).frames
    pool = pd.concat([splits["test"], splits["val"]], ignore_index=True)
    return pool.head(n).reset_index(drop=True)


def train_split(source: Path = FAKENEWSNET) -> pd.DataFrame:
    frame, _ = read_sources([str(source)], progress=False)
    return split_news(frame, DataConfig(sources=[str(source)])).frames["train"]


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def markdown_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)
