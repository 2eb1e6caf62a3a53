"""Adaptive micro-batching for many small concurrent requests, without extra threads.

One forward pass over eight headlines costs about 3-4x a pass over one, not 8x. So each request queues its
headlines, and the request's own thread then either becomes a *leader* (when one of ``workers`` model
slots is free): it runs the oldest queued requests, merged into passes of up to ``merge_rows`` headlines,
until its own request is answered; or it waits while a leader answers it. An uncontended request therefore
runs at once on its own thread (no hand-off to a worker thread: on a busy machine every hand-off can cost
a scheduler tick), and batches form only while every slot is busy, exactly when they pay off.

The slots share one copy of the weights (inference only reads them); each has its own ``Predictor``, so
``workers`` passes run in parallel on machines with the cores for it. Requests share passes, never failures:
when a merged pass raises, each of its requests is run again on its own, so only the request whose input
broke the pass gets the error (the API checks every headline before queueing it, so this is rare). There is nothing to shut down: an
old model is freed when the last request holding it is answered.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

import torch

from fakenews_ml.bundle import LoadedBundle
from fakenews_ml.config import PredictConfig
from fakenews_ml.predict import Predictor


class BatchScores(NamedTuple):
    """One request's answers, in input order; the out-of-domain lists are None without a domain profile."""

    prob_fake: list[float]
    label: list[int]
    ood_score: list[float] | None
    out_of_domain: list[bool] | None


class _Job:
    __slots__ = ("done", "error", "labels", "ood", "out_of_domain", "probs", "titles", "waiting", "wakeup")

    def __init__(self, titles: list[str], lock: threading.Lock):
        self.titles = titles
        self.done = self.waiting = False
        self.probs = self.labels = self.error = self.ood = self.out_of_domain = None
        self.wakeup = threading.Condition(lock)  # one per request: wake its owner only, not every waiter


class BatchingPredictor:
    def __init__(
        self,
        bundle: LoadedBundle,
        config: PredictConfig,
        workers: int = 1,
        merge_rows: int = 32,
        forward_model: torch.nn.Module | None = None,
    ):
        """``forward_model``: the (traced) model a Predictor of ``bundle`` already made, to share."""
        self.workers = max(1, workers)
        # A merged pass must stay within what the Predictor accepts in one call.
        self.merge_rows = max(1, min(merge_rows, config.max_batch))
        first = Predictor(bundle, config, forward_model)
        self._free = [first, *(Predictor(bundle, config, first.forward_model) for _ in range(self.workers - 1))]
        self._pending: deque[_Job] = deque()
        self._lock = threading.Lock()
        self.split_passes = 0  # merged passes that failed and were rerun request by request

    def predict(self, titles: list[str]) -> tuple[list[float], list[int]]:
        """``prob_fake`` and ``label`` per headline, in order (blocks the calling thread)."""
        scored = self.score(titles)
        return scored.prob_fake, scored.label

    def score(self, titles: list[str]) -> BatchScores:
        """``prob_fake``, ``label`` and (with a domain profile) ``ood_score``/``out_of_domain`` per headline."""
        job = _Job(titles, self._lock)
        with self._lock:
            self._pending.append(job)
        while True:
            with self._lock:
                job.waiting = True
                while not job.done and not (self._free and self._pending):
                    job.wakeup.wait()
                job.waiting = False
                if job.done:
                    break
                predictor = self._free.pop()
            try:
                self._lead(predictor, job)
            finally:
                with self._lock:
                    self._free.append(predictor)
                    # The slot is free: wake one waiting owner of a queued request to lead the queue.
                    next_leader = next((queued for queued in self._pending if queued.waiting), None)
                    if next_leader is not None:
                        next_leader.wakeup.notify()
        if job.error is not None:
            raise job.error
        return BatchScores(job.probs, job.labels, job.ood, job.out_of_domain)

    def _lead(self, predictor: Predictor, own: _Job) -> None:
        """Answer queued requests, oldest first, until ``own`` is answered or another leader has it."""
        while True:
            with self._lock:
                if own.done or not self._pending:
                    return
                batch = [self._pending.popleft()]
                rows = len(batch[0].titles)
                while self._pending and rows + len(self._pending[0].titles) <= self.merge_rows:
                    rows += len(self._pending[0].titles)
                    batch.append(self._pending.popleft())
            self._run(predictor, batch)
            with self._lock:
                for job in batch:
                    job.done = True
                    job.wakeup.notify()  # its owner returns the answer

    def _run(self, predictor: Predictor, batch: list[_Job]) -> None:
        titles = [title for job in batch for title in job.titles]
        try:
            scores = predictor.score(titles)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc  # the request's own pass: its error; the slot lives on
                return
            # A merged pass failed: requests must not share a failure. Each runs alone, so only the one
            # whose input the model cannot take gets an error (rare: inputs were checked before queueing).
            with self._lock:
                self.split_passes += 1
            for job in batch:
                self._run(predictor, [job])
            return
        except BaseException as exc:  # every request of the pass gets it: none may wait forever
            for job in batch:
                job.error = exc
            return
        probs, labels = scores.prob_fake.astype(float).tolist(), scores.label.tolist()
        ood = scores.ood_score.astype(float).tolist() if scores.ood_score is not None else None
        flags = scores.out_of_domain.astype(bool).tolist() if scores.out_of_domain is not None else None
        start = 0
        for job in batch:
            end = start + len(job.titles)
            job.probs, job.labels = probs[start:end], labels[start:end]
            if ood is not None:
                job.ood, job.out_of_domain = ood[start:end], flags[start:end]
            start = end
