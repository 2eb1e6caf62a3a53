"""The API's background log writer: everything submitted lands (flush, close, back-pressure, retries)."""

from __future__ import annotations

import threading

from fakenews_ml.monitoring.log_writer import BackgroundLogWriter
from fakenews_ml.monitoring.prediction_log import PredictionLog


def row(i, request_id="r"):
    return {"request_id": request_id, "title": f"headline {i}", "prob_fake": 0.25, "label": 0, "model_version": "v"}


def test_flush_waits_for_rows_and_close_writes_the_rest(tmp_path):
    store = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}")
    writer = BackgroundLogWriter(store, interval_s=5.0)  # a long timer: only flush/close can write in time
    writer.submit([row(i) for i in range(3)])
    assert writer.backlog == 3
    assert writer.flush(timeout=10)
    assert store.count() == 3 and writer.backlog == 0 and writer.written == 3
    writer.submit([row(i) for i in range(4)])
    writer.close()
    assert store.count() == 7


def test_back_pressure_never_drops_rows_from_many_threads(tmp_path):
    store = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}")
    writer = BackgroundLogWriter(store, max_rows=10, batch_rows=4, interval_s=0.01)

    def produce(k):
        for i in range(25):
            writer.submit([row(i, f"{k}-{i}"), row(i + 100, f"{k}-{i}")])

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert store.count() == 6 * 25 * 2 and writer.dropped == 0


class FlakyStore:
    """Fails the first writes as a database that is briefly down would."""

    def __init__(self, store, failures):
        self.store, self.failures = store, failures

    def log_predictions(self, rows, return_ids=True):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        return self.store.log_predictions(rows, return_ids=return_ids)


def test_failed_writes_are_retried_until_they_land(tmp_path):
    store = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}")
    writer = BackgroundLogWriter(FlakyStore(store, failures=2), interval_s=0.01, retry_s=0.05)
    writer.submit([row(i) for i in range(5)])
    assert writer.flush(timeout=10)
    assert store.count() == 5 and writer.last_error is None
    writer.close()


def test_a_malformed_row_costs_only_itself(tmp_path):
    store = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}")
    writer = BackgroundLogWriter(store, interval_s=5.0)
    writer.submit([row(0), {**row(1), "title": ""}, row(2)])
    assert writer.flush(timeout=10)
    assert store.count() == 2 and writer.dropped == 1 and "empty title" in writer.last_error
    writer.close()
