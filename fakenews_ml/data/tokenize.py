"""Headlines -> compact ragged token arrays (int32 ids + offsets), saved as ``.npz`` without pickles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fakenews_ml.atomic import atomic_path


@dataclass
class TokenizedSplit:
    """Row ``i`` holds ``input_ids[offsets[i]:offsets[i+1]]``; ``labels`` is -1 where unknown."""

    input_ids: np.ndarray  # int32, all rows concatenated
    offsets: np.ndarray  # int64, len = n + 1
    labels: np.ndarray  # int8
    ids: np.ndarray  # unicode row ids, for joining predictions back

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.input_ids[self.offsets[i] : self.offsets[i + 1]]

    def take(self, indices: np.ndarray) -> TokenizedSplit:
        """The rows at ``indices``, in that order."""
        rows = [self.row(int(i)) for i in indices]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
        return TokenizedSplit(flat, offsets, self.labels[indices], self.ids[indices])

    def save(self, path: Path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp:
            np.savez(tmp, input_ids=self.input_ids, offsets=self.offsets, labels=self.labels, ids=self.ids)
        return path

    @classmethod
    def load(cls, path: Path) -> TokenizedSplit:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["input_ids"], data["offsets"], data["labels"], data["ids"])


def tokenize_titles(titles: list[str], tokenizer, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Fast-tokenizer ids (with [CLS]/[SEP], truncated to ``max_length``) as flat ids + offsets."""
    encoded = tokenizer(list(titles), truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((t for ids in encoded for t in ids), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets


def tokenize_frame(frame: pd.DataFrame, tokenizer, max_length: int) -> TokenizedSplit:
    flat, offsets = tokenize_titles(frame["title"].astype(str).tolist(), tokenizer, max_length)
    labels = frame["label"].to_numpy(dtype=np.int8) if "label" in frame else np.full(len(frame), -1, np.int8)
    ids = frame["id"].astype(str).to_numpy(dtype=str) if "id" in frame else np.arange(len(frame)).astype(str)
    return TokenizedSplit(flat, offsets, labels, ids)


def tokenize_splits(frames: dict[str, pd.DataFrame], tokenizer, max_length: int) -> dict[str, TokenizedSplit]:
    return {name: tokenize_frame(frame, tokenizer, max_length) for name, frame in frames.items()}
