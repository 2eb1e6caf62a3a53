"""Samples per second of a Lightning fit, timed over the steps after a warm-up (used by the training
benchmarks). On CUDA the clock is read after the queued kernels finish, not when Python gets ahead of them."""

from __future__ import annotations

import time

import lightning.pytorch as L
import torch


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.started, self.samples, self.seconds = warmup, None, 0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == self.warmup:
            _sync()
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            _sync()
            self.samples += len(batch["labels"])
            self.seconds = time.perf_counter() - self.started

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0
