"""Deduplicate on a normalised title, then split train/val/test stratified by label, with a seed.

Deduplication happens *before* splitting: near-identical headlines in two splits would leak the answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fakenews_ml.config import DataConfig
from fakenews_ml.errors import LeakageError, SchemaError

SPLITS = ("train", "val", "test")
_NON_WORD = re.compile(r"[^\w]+")


def normalize_title(title: str) -> str:
    """Case, accents, punctuation and spacing folded away: 'Trump’s WALL!' == 'trumps wall'."""
    folded = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode()
    folded = folded.lower().replace("'", "")
    return _NON_WORD.sub(" ", folded).strip()


@dataclass
class SplitResult:
    frames: dict[str, pd.DataFrame]
    duplicates_removed: int
    conflicting_labels_removed: int

    def sizes(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Keep one row per normalised title; titles seen with both labels are dropped as unreliable."""
    work = frame.assign(norm_title=frame["title"].map(normalize_title))
    work = work[work["norm_title"] != ""]
    labels_per_title = work.groupby("norm_title")["label"].nunique()
    conflicting = labels_per_title[labels_per_title > 1].index
    n_conflict_rows = int(work["norm_title"].isin(conflicting).sum())
    work = work[~work["norm_title"].isin(conflicting)]
    deduped = work.drop_duplicates("norm_title", keep="first").reset_index(drop=True)
    duplicates = len(frame) - n_conflict_rows - len(deduped)
    return deduped, duplicates, n_conflict_rows


def split_news(frame: pd.DataFrame, config: DataConfig) -> SplitResult:
    """Stratified, seeded train/val/test over deduplicated titles; proven leak-free before returning."""
    deduped, duplicates, conflicts = deduplicate(frame)
    if config.max_rows and len(deduped) > config.max_rows:
        deduped = _stratified_sample(deduped, config.max_rows, config.seed)
    rng = np.random.default_rng(config.seed)
    assignment = pd.Series("train", index=deduped.index)
    for _, group in deduped.groupby("label"):
        order = rng.permutation(group.index.to_numpy())
        n_test = int(round(len(order) * config.test_fraction))
        n_val = int(round(len(order) * config.val_fraction))
        assignment[order[:n_test]] = "test"
        assignment[order[n_test:n_test + n_val]] = "val"
    frames = {name: deduped[assignment == name].reset_index(drop=True) for name in SPLITS}
    for name, part in frames.items():
        if part.empty or part["label"].nunique() < 2:
            raise SchemaError(
                f"split {name!r} has {len(part)} rows and labels {sorted(part['label'].unique())}: "
                "need more data of both classes"
            )
    check_no_leakage(frames)
    return SplitResult(frames, duplicates, conflicts)


def leaked_titles(frames: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """For each pair of splits, the normalised titles they share (empty lists when leak-free)."""
    keys = {name: set(part["title"].map(normalize_title)) for name, part in frames.items()}
    names = list(frames)
    return {
        f"{a}&{b}": sorted(keys[a] & keys[b])
        for i, a in enumerate(names)
        for b in names[i + 1:]
    }


def check_no_leakage(frames: dict[str, pd.DataFrame]) -> None:
    leaks = {pair: titles for pair, titles in leaked_titles(frames).items() if titles}
    if leaks:
        detail = "; ".join(f"{pair}: {len(t)} e.g. {t[0]!r}" for pair, t in leaks.items())
        raise LeakageError(f"normalised titles shared between splits: {detail}")


def _stratified_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    fraction = n / len(frame)
    return (
        frame.groupby("label", group_keys=False)
        .apply(lambda g: g.sample(frac=fraction, random_state=seed), include_groups=True)
        .reset_index(drop=True)
    )
