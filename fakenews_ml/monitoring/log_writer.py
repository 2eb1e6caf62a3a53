"""A background thread that writes prediction rows to the ``PredictionLog`` in batches.

The API hands rows over and answers at once, so the database never adds to a request's latency. The
writer wakes on a timer (every ``interval_s``), not on every request: under load it writes many requests'
rows in one transaction, and a request never wakes a thread that would compete with the model for the
CPU. Nothing is dropped: when ``max_rows`` are waiting, requests wait (back-pressure); a failed write is
retried until it succeeds; ``flush`` waits for everything submitted so far and ``close`` flushes before
returning. Rows still waiting when the process is killed hard (SIGKILL, OOM) are lost, at most
``interval_s`` worth; a normal shutdown (SIGTERM, Ctrl-C) writes them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence

from fakenews_ml.errors import InputError
from fakenews_ml.monitoring.prediction_log import PredictionLog

log = logging.getLogger(__name__)


class BackgroundLogWriter:
    def __init__(
        self,
        store: PredictionLog,
        max_rows: int = 20_000,
        batch_rows: int = 1_000,
        interval_s: float = 0.05,
        retry_s: float = 0.5,
    ):
        self.store = store
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.dropped = 0
        self.last_error: str | None = None
        self._rows: list = []
        self._cond = threading.Condition()
        self._submitted = 0
        self._written = 0  # committed or (malformed, hence) dropped
        self._urgent = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Rows accepted but not yet committed."""
        with self._cond:
            return self._submitted - self._written

    @property
    def written(self) -> int:
        with self._cond:
            return self._written - self.dropped

    def submit(self, rows: Sequence[Mapping]) -> None:
        """Queue rows for writing; waits only while ``max_rows`` rows are already waiting."""
        if not rows:
            return
        with self._cond:
            if self._closing:
                raise RuntimeError("the prediction log writer is closed")
            while self._rows and len(self._rows) + len(rows) > self.max_rows:
                self._urgent = True
                self._cond.notify_all()
                self._cond.wait()
            self._rows.extend(rows)
            self._submitted += len(rows)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every row submitted so far is committed; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            self._urgent = True
            self._cond.notify_all()
            while self._written < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything still waiting, then stop the thread."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not (self._urgent or self._closing):
                    self._cond.wait(self.interval_s)
                self._urgent = False
                batch, self._rows = self._rows, []
                closing = self._closing
            for start in range(0, len(batch), self.batch_rows):
                self._write(batch[start : start + self.batch_rows])
            if closing and not batch:
                return

    def _write(self, batch: list) -> None:
        while True:
            try:
                self.store.log_predictions(batch, return_ids=False)
                self.last_error = None
            except InputError:
                self._write_one_by_one(batch)  # one malformed row must not cost the others theirs
            except Exception as exc:  # the database is down or locked past its timeout: keep the rows, retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("prediction log write of %d rows failed, retrying: %s", len(batch), self.last_error)
                time.sleep(self.retry_s)
                continue
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()  # flushers and requests waiting for room
            return

    def _write_one_by_one(self, batch: list) -> None:
        for row in batch:
            while True:
                try:
                    self.store.log_predictions([row], return_ids=False)
                except InputError as exc:  # can never be written: dropped loudly (our own code made it)
                    self.dropped += 1
                    self.last_error = f"dropped a malformed row: {exc}"
                    log.error("prediction log: %s", self.last_error)
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    time.sleep(self.retry_s)
                    continue
                break
