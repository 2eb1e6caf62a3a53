"""Synthetic news CSVs for the asset tests: small, unique titles, and a signal a tiny model can learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FAKE_WORDS = ["shocking", "miracle", "exposed", "bombshell", "secret", "hoax", "outrageous", "unbelievable"]
REAL_WORDS = ["senate", "council", "minister", "budget", "court", "report", "quarterly", "official"]
SUBJECTS = [
    "the president",
    "a local doctor",
    "scientists",
    "the governor",
    "celebrities",
    "the new vaccine",
    "city hall",
    "the central bank",
    "farmers",
    "a famous actor",
    "the election",
    "oil prices",
]
TAILS = ["today", "this week", "after the vote", "in new york", "again", "at last", "despite protests"]


def news_frame(n: int, seed: int = 0, fake_share: float = 0.35) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < fake_share).astype(int)
    labels[:2] = [0, 1]
    titles = []
    for i, label in enumerate(labels):
        words = FAKE_WORDS if label else REAL_WORDS
        parts = [
            words[rng.integers(len(words))],
            words[rng.integers(len(words))],
            SUBJECTS[rng.integers(len(SUBJECTS))],
            TAILS[rng.integers(len(TAILS))],
            f"number {seed}x{i}",
        ]
        titles.append(" ".join(parts).capitalize())
    return pd.DataFrame({"title": titles, "text": "", "label": labels, "source": "synthetic"})


def write_news_csv(path: Path, n: int = 300, seed: int = 0, fake_share: float = 0.35) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    news_frame(n, seed, fake_share).to_csv(path, index=False)
    return path
