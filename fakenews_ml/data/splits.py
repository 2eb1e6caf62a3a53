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
_NON_WORD = re.compile(r"[\W_]+")
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_ACCENTS = re.compile(r"[\u0300-\u036f]")  # combining diacritical marks (é -> e); kana voicing marks stay


def normalize_title(title: str) -> str:
    """Case, accents, punctuation and spacing folded away: 'Trump’s WALL!' == 'trumps wall'.

    Letters of every script are kept (only diacritical accents are dropped), so non-Latin headlines
    are not all folded into the same empty key."""
    decomposed = unicodedata.normalize("NFKD", str(title))
    folded = unicodedata.normalize("NFC", _ACCENTS.sub("", decomposed)).casefold()
    folded = _APOSTROPHES.sub("", folded)
    return _NON_WORD.sub(" ", folded).strip()


@dataclass
class SplitResult:
    frames: dict[str, pd.DataFrame]
    duplicates_removed: int
    conflicting_labels_removed: int
    empty_titles_removed: int = 0  # titles with no letters or digits at all (e.g. only emoji)

    def sizes(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Keep one row per normalised title; titles seen with both labels are dropped as unreliable.

    Returns ``(deduped, duplicates, conflicting_rows)``; rows whose normalised title is empty are dropped
    too and counted in ``deduped.attrs["empty_titles_removed"]``."""
    work = frame.assign(norm_title=frame["title"].map(normalize_title))
    n_empty = int((work["norm_title"] == "").sum())
    work = work[work["norm_title"] != ""]
    labels_per_title = work.groupby("norm_title")["label"].nunique()
    conflicting = labels_per_title[labels_per_title > 1].index
    n_conflict_rows = int(work["norm_title"].isin(conflicting).sum())
    work = work[~work["norm_title"].isin(conflicting)]
    deduped = work.drop_duplicates("norm_title", keep="first").reset_index(drop=True)
    duplicates = len(frame) - n_empty - n_conflict_rows - len(deduped)
    deduped.attrs["empty_titles_removed"] = n_empty
    return deduped, duplicates, n_conflict_rows


def split_news(frame: pd.DataFrame, config: DataConfig) -> SplitResult:
    """Stratified, seeded train/val/test over deduplicated titles; proven leak-free before returning.
    Per class, rows are ordered by a seeded hash of their normalised title (see ``_seeded_rank``)."""
    deduped, duplicates, conflicts = deduplicate(frame)
    n_empty = deduped.attrs.get("empty_titles_removed", 0)
    if config.max_rows and len(deduped) > config.max_rows:
        deduped = _stratified_sample(deduped, config.max_rows, config.seed)
    rank = _seeded_rank(deduped["norm_title"], config.seed)
    assignment = pd.Series("train", index=deduped.index)
    for _, group in deduped.groupby("label"):
        order = group.index.to_numpy()[np.argsort(rank[group.index].to_numpy(), kind="stable")]
        n_test = int(round(len(order) * config.test_fraction))
        n_val = int(round(len(order) * config.val_fraction))
        assignment.loc[order[:n_test]] = "test"
        assignment.loc[order[n_test : n_test + n_val]] = "val"
    frames = {name: deduped[assignment == name].reset_index(drop=True) for name in SPLITS}
    for name, part in frames.items():
        if part.empty or part["label"].nunique() < 2:
            raise SchemaError(
                f"split {name!r} has {len(part)} rows and labels {sorted(int(v) for v in part['label'].unique())}: "
                "need more data of both classes"
            )
    check_no_leakage(frames)
    return SplitResult(frames, duplicates, conflicts, n_empty)


def _seeded_rank(norm_titles: pd.Series, seed: int) -> pd.Series:
    """A pseudo-random but fixed position for every title (a seeded hash of the title itself). Splits
    take each class's rows in this order [test | val | train], so adding rows (feedback, a new source)
    never moves an existing row into the test split from train: the test split stays a fair, frozen
    yardstick for the champion/challenger gate."""
    import hashlib

    return norm_titles.map(
        lambda t: int.from_bytes(hashlib.blake2b(f"{seed}:{t}".encode(), digest_size=8).digest(), "big")
    )


def leaked_titles(frames: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """For each pair of splits, the normalised titles they share (empty lists when leak-free)."""
    keys = {name: set(part["title"].map(normalize_title)) for name, part in frames.items()}
    names = list(frames)
    return {f"{a}&{b}": sorted(keys[a] & keys[b]) for i, a in enumerate(names) for b in names[i + 1 :]}


def check_no_leakage(frames: dict[str, pd.DataFrame]) -> None:
    leaks = {pair: titles for pair, titles in leaked_titles(frames).items() if titles}
    if leaks:
        detail = "; ".join(f"{pair}: {len(t)} e.g. {t[0]!r}" for pair, t in leaks.items())
        raise LeakageError(f"normalised titles shared between splits: {detail}")


def _stratified_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Exactly ``n`` rows (never more), class shares kept: largest-remainder allocation per label."""
    counts = frame["label"].value_counts().sort_index()
    quotas = counts * n / len(frame)
    take = np.floor(quotas).astype(int)
    remainder = (quotas - take).sort_values(ascending=False, kind="stable")
    take.loc[remainder.index[: n - int(take.sum())]] += 1
    parts = [frame[frame["label"] == label].sample(n=int(k), random_state=seed) for label, k in take.items()]
    return pd.concat(parts).sort_index().reset_index(drop=True)
