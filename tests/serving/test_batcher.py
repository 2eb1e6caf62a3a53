"""Micro-batching: concurrent requests get exactly their own answers, merged passes stay within bounds,
and an error reaches only the requests of the failing pass."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fakenews_ml.config import PredictConfig
from fakenews_ml.predict import Predictor
from fakenews_ml.serving import batcher as batcher_module


class RecordingPredictor(Predictor):
    """Slow enough that requests pile up behind a busy slot; records each pass's size."""

    passes: list[int] = []
    fail_on: str | None = None

    def score(self, titles, progress=None):
        RecordingPredictor.passes.append(len(titles))
        time.sleep(0.02)
        if self.fail_on in titles:
            raise RuntimeError("model exploded")
        return super().score(titles, progress)


@pytest.fixture
def recording(monkeypatch, bundles):
    monkeypatch.setattr(batcher_module, "Predictor", RecordingPredictor)
    RecordingPredictor.passes, RecordingPredictor.fail_on = [], None
    reference = Predictor.from_path(bundles["v1"], "fp32")
    return reference


def run_concurrently(batcher, requests):
    results, errors = [None] * len(requests), [None] * len(requests)
    start = threading.Barrier(len(requests))

    def call(i):
        start.wait()
        try:
            results[i] = batcher.predict(requests[i])
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_concurrent_requests_are_merged_and_answered_exactly(recording):
    batcher = batcher_module.BatchingPredictor(recording.bundle, PredictConfig(), workers=1, merge_rows=6)
    requests = [[f"Headline {i} part {j}" for j in range(1 + i % 3)] for i in range(16)]
    results, errors = run_concurrently(batcher, requests)
    assert errors == [None] * 16
    for titles, (probs, labels) in zip(requests, results):
        expected = recording.predict(titles)
        np.testing.assert_allclose(probs, expected["prob_fake"], rtol=1e-5, atol=1e-6)
        assert labels == expected["label"].tolist()
    passes = RecordingPredictor.passes
    assert sum(passes) == sum(len(r) for r in requests)
    assert len(passes) < len(requests)  # requests waiting behind a busy slot were merged
    assert max(passes) <= 6


def test_merging_never_exceeds_the_predictor_batch_limit(recording):
    batcher = batcher_module.BatchingPredictor(recording.bundle, PredictConfig(max_batch=3), workers=1, merge_rows=32)
    results, errors = run_concurrently(
        batcher, [["a b c"], ["d e f", "g h i"], ["j k l"], ["m n o", "p q r", "s t u"]] * 3
    )
    assert errors == [None] * 12 and max(RecordingPredictor.passes) <= 3


def test_an_error_reaches_only_its_own_pass(recording):
    batcher = batcher_module.BatchingPredictor(recording.bundle, PredictConfig(), workers=2, merge_rows=1)
    RecordingPredictor.fail_on = "poison headline"
    results, errors = run_concurrently(batcher, [["fine one"], ["poison headline"], ["fine two"], ["fine three"]])
    assert [type(e).__name__ if e else None for e in errors] == [None, "RuntimeError", None, None]
    assert batcher.predict(["still works"])[1] in ([0], [1])


class SlowFirstPredictor(RecordingPredictor):
    """Holds the only slot on 'slow headline' until released, so that every later request queues."""

    release = threading.Event()

    def score(self, titles, progress=None):
        if "slow headline" in titles:
            assert SlowFirstPredictor.release.wait(30)
        return super().score(titles, progress)


@pytest.mark.parametrize("poison_at", [0, 5, 11])
def test_a_failing_merged_pass_is_split_so_only_the_bad_request_fails(monkeypatch, bundles, poison_at):
    monkeypatch.setattr(batcher_module, "Predictor", SlowFirstPredictor)
    RecordingPredictor.passes, RecordingPredictor.fail_on = [], "poison headline"
    SlowFirstPredictor.release.clear()
    reference = Predictor.from_path(bundles["v1"], "fp32")
    batcher = batcher_module.BatchingPredictor(reference.bundle, PredictConfig(), workers=1, merge_rows=32)
    blocker = threading.Thread(target=batcher.predict, args=(["slow headline"],))
    blocker.start()
    while batcher._free:  # the blocker holds the only slot
        time.sleep(0.005)
    requests = [[f"Fine headline {i}", f"and its second {i}"] for i in range(12)]
    requests[poison_at] = ["poison headline"]
    results, errors = [None] * 12, [None] * 12

    def call(i):
        try:
            results[i] = batcher.predict(requests[i])
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(batcher._pending) < 12 and time.monotonic() < deadline:  # all queued behind the busy slot
        time.sleep(0.005)
    SlowFirstPredictor.release.set()
    for thread in threads:
        thread.join()
    blocker.join()
    assert [i for i, e in enumerate(errors) if e is not None] == [poison_at]
    assert "model exploded" in str(errors[poison_at])
    assert RecordingPredictor.passes[1] == 23  # all twelve queued requests shared one pass, which failed
    assert batcher.split_passes == 1
    for i, (titles, result) in enumerate(zip(requests, results)):
        if i != poison_at:
            expected = reference.predict(titles)
            np.testing.assert_allclose(result[0], expected["prob_fake"], rtol=1e-5, atol=1e-6)
