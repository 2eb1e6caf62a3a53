"""``NewsDataModule``: tokenized splits -> length-bucketed, dynamically padded batches.

Headlines are short and uneven; padding each batch only to its own longest row (and grouping rows of
similar length) roughly halves the work against padding everything to ``max_length``.
"""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fakenews_ml.data.tokenize import TokenizedSplit


class TokenizedDataset(Dataset):
    def __init__(self, split: TokenizedSplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        return self.split.row(index), int(self.split.labels[index]), index


class PadCollator:
    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, rows) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, _, _) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.from_numpy(ids.astype(np.int64))
            attention_mask[i, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": torch.tensor([label for _, label, _ in rows], dtype=torch.long),
            "index": torch.tensor([index for _, _, index in rows], dtype=torch.long),
        }


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffled chunks of ``batch_size * pool`` rows, sorted by length inside each chunk, cut into batches
    whose order is shuffled again. ``shuffle=False`` gives length-sorted batches (for inference)."""

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool: int = 50,
        rank: int = 0,
        replicas: int = 1,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool
        self.epoch = 0
        self.rank, self.replicas = rank, replicas

    def __len__(self) -> int:
        if self.replicas == 1:
            return (len(self.lengths) + self.batch_size - 1) // self.batch_size
        chunk = self.batch_size * self.pool
        sizes = [min(chunk, len(self.lengths) - start) for start in range(0, len(self.lengths), chunk)]
        return sum(
            n // self.batch_size + (n % self.batch_size >= self.replicas) for n in sizes
        )  # a last batch too small to give every process a row is left out

    def __iter__(self):
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size))
            return
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches.extend(part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size))
        for b in rng.permutation(len(batches)):
            if self.replicas == 1:
                yield batches[b].tolist()
            elif len(batches[b]) >= self.replicas:
                # Data-parallel: every process draws the same global batches (same seed) and takes its own
                # share of each, so a step sees the rows one process would see with the same global batch.
                yield batches[b][self.rank :: self.replicas].tolist()


def make_loader(
    split: TokenizedSplit,
    batch_size: int,
    pad_token_id: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    replicas: int = 1,
) -> DataLoader:
    sampler = BucketBatchSampler(split.lengths(), batch_size, shuffle=shuffle, seed=seed, rank=rank, replicas=replicas)
    return DataLoader(TokenizedDataset(split), batch_sampler=sampler, collate_fn=PadCollator(pad_token_id))


class NewsDataModule(L.LightningDataModule):
    def __init__(self, splits: dict[str, TokenizedSplit], batch_size: int, pad_token_id: int, seed: int = 0):
        super().__init__()
        self.splits = splits
        self.batch_size = batch_size
        self.pad_token_id = pad_token_id
        self.seed = seed

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.splits["train"].labels.astype(np.int64), minlength=2)

    def train_dataloader(self) -> DataLoader:
        """``batch_size`` is the global batch: with several processes each takes its share of every batch.
        Validation is not split: every process scores all of val, so early stopping and checkpointing see the
        same val ROC-AUC everywhere (and agree on when to stop)."""
        trainer = self.trainer
        rank, replicas = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return make_loader(
            self.splits["train"],
            self.batch_size,
            self.pad_token_id,
            shuffle=True,
            seed=self.seed,
            rank=rank,
            replicas=replicas,
        )

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.splits["val"], self.batch_size * 2, self.pad_token_id, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return make_loader(self.splits["test"], self.batch_size * 2, self.pad_token_id, shuffle=False)
