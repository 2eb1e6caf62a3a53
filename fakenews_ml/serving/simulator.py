"""Traffic simulator (``fakenews simulate``): streams headlines sampled from a CSV through the API over
HTTP, or through a predictor directly with the same logging, at a given rate, optionally sending their
known labels back as feedback. Used to demo the drift/retrain loop and to benchmark the API."""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as datetime_time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from fakenews_ml.data.readers import canonicalize
from fakenews_ml.errors import FakeNewsError, SchemaError
from fakenews_ml.tables import read_csv_strict

FEEDBACK_BATCH = 100  # labels per POST /feedback: few round trips, small all-or-nothing batches
ORIGIN = "simulator"


@dataclass
class Outcome:
    ok: bool
    status: str  # HTTP status code, or the exception name when no answer came
    seconds: float
    request_id: str | None = None
    label: int | None = None
    model_version: str | None = None
    error: str | None = None


def load_headlines(path: Path | str, truncate: int | None = 1000) -> pd.DataFrame:
    """``title`` and, when the file has labels, ``label`` (Int8, 1 = fake). Untitled rows are skipped (and
    counted in ``attrs['dropped_empty_titles']``); headlines are cut to ``truncate`` characters, the API's
    default limit, so long posts are sent rather than rejected."""
    raw = read_csv_strict(path)
    columns = {str(c).strip().lower(): c for c in raw.columns}
    if "title" not in columns:
        raise SchemaError(f"{path}: no 'title' column (found: {list(raw.columns)})")
    if "label" in columns:
        frame = canonicalize(raw, Path(path).stem, where=str(path))[["title", "label"]]
        dropped = frame.attrs.get("dropped_empty_titles", 0)
    else:
        titles = raw[columns["title"]].astype("string").str.strip()
        keep = titles.notna() & (titles != "")
        frame, dropped = pd.DataFrame({"title": titles[keep]}).reset_index(drop=True), int((~keep).sum())
    if frame.empty:
        raise SchemaError(f"{path}: no rows with a non-empty title")
    if truncate:
        frame["title"] = frame["title"].str.slice(0, truncate)
    frame = frame.astype({"title": str})
    frame.attrs["dropped_empty_titles"] = dropped
    return frame


class HttpTarget:
    """The API over HTTP; one keep-alive session per worker thread."""

    def __init__(self, base_url: str, timeout: float = 30.0, token: str | None = None):
        """``token``: sent as ``Authorization: Bearer`` with feedback (default: ``FAKENEWS_API_TOKEN``)."""
        import requests

        from fakenews_ml.environment import api_token

        self._requests = requests
        self._feedback_headers = {"Authorization": f"Bearer {token or api_token()}"} if token or api_token() else {}
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        # A proxy between the simulator and a local API would only distort the latencies.
        self._trust_env = urlparse(self.base_url).hostname not in ("127.0.0.1", "localhost", "::1")
        self.feedback_batch = FEEDBACK_BATCH

    def check(self) -> None:
        """Fail fast with one clear line when the API is not there (instead of N connection errors), and
        learn its batch limit so feedback is sent in batches it accepts."""
        try:
            response = self._session().get(f"{self.base_url}/health", timeout=10)
        except self._requests.RequestException as exc:
            raise FakeNewsError(
                f"no API at {self.base_url} ({type(exc).__name__}); start it with `fakenews serve`"
            ) from None
        if response.status_code != 200:
            raise FakeNewsError(
                f"the API at {self.base_url} is not ready: GET /health answered {response.status_code} {_detail(response)}"
            )
        limit = (response.json().get("limits") or {}).get("max_batch")
        if limit:
            self.feedback_batch = min(FEEDBACK_BATCH, int(limit))

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._requests.Session()
            session.trust_env = self._trust_env
            self._local.session = session
        return session

    def predict(self, title: str, origin: str) -> Outcome:
        started = time.perf_counter()
        try:
            response = self._session().post(
                f"{self.base_url}/predict", json={"titles": [title], "origin": origin}, timeout=self.timeout
            )
        except self._requests.RequestException as exc:
            return Outcome(False, type(exc).__name__, time.perf_counter() - started, error=str(exc))
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            return Outcome(False, str(response.status_code), seconds, error=_detail(response))
        body = response.json()
        item = body["predictions"][0]
        return Outcome(True, "200", seconds, body["request_id"], int(item["label"]), body["model_version"])

    def feedback(self, rows: list[dict]) -> int:
        response = self._session().post(
            f"{self.base_url}/feedback", json=rows, headers=self._feedback_headers, timeout=max(self.timeout, 60)
        )
        if response.status_code != 200:
            raise FakeNewsError(f"POST /feedback answered {response.status_code}: {_detail(response)}")
        return int(response.json()["stored"])

    def close(self) -> None:
        """Nothing to release: each thread's session closes with its thread."""


class DirectTarget:
    """The predictor in this process, logging like the API does (synchronously: no server to flush)."""

    def __init__(self, model: Path | str, log_url: str | None = None, day: date | None = None):
        """``day`` replays the traffic as if it arrived on that (UTC) day, a second apart from noon on,
        so several days of history can be built for the daily drift partitions."""
        from fakenews_ml.monitoring.prediction_log import PredictionLog
        from fakenews_ml.predict import Predictor

        self.predictor = Predictor.from_path(model, "auto")
        self.version = self.predictor.version  # the champion's version, whichever variant serves
        self.log = PredictionLog(log_url)
        self.feedback_batch = FEEDBACK_BATCH
        self._clock = itertools.count()
        self._noon = datetime.combine(day, datetime_time(12), tzinfo=UTC) if day else None

    def check(self) -> None:
        """Nothing to reach: the model is already loaded."""

    def predict(self, title: str, origin: str) -> Outcome:
        started = time.perf_counter()
        try:
            row = self.predictor.predict([title]).iloc[0]
        except FakeNewsError as exc:
            return Outcome(False, type(exc).__name__, time.perf_counter() - started, error=str(exc))
        request_id, label = str(uuid.uuid4()), int(row.label)
        record = {
            "request_id": request_id,
            "title": title.strip(),
            "prob_fake": float(row.prob_fake),
            "label": label,
            "model_version": self.version,
            "origin": origin,
            "ood_score": float(row["ood_score"]) if "ood_score" in row else None,
            "out_of_domain": bool(row["out_of_domain"]) if "out_of_domain" in row else None,
        }
        if self._noon is not None:
            record["created_at"] = self._noon + timedelta(seconds=next(self._clock))
        self.log.log_predictions([record])
        return Outcome(True, "200", time.perf_counter() - started, request_id, label, self.version)

    def feedback(self, rows: list[dict]) -> int:
        return len(self.log.add_feedback(rows, source=ORIGIN))

    def close(self) -> None:
        self.log.close()


def simulate(
    headlines: pd.DataFrame,
    n: int,
    target,
    *,
    rate: float | None = None,
    concurrency: int = 1,
    feedback: bool = False,
    seed: int = 0,
    origin: str = ORIGIN,
    progress: bool = False,
) -> dict:
    """Send ``n`` headlines sampled from ``headlines`` (with replacement only when ``n`` exceeds its rows)
    to ``target``, one per request, from ``concurrency`` threads, at ``rate`` requests/s in total when
    given (else as fast as the target answers). Returns the summary."""
    if n < 1:
        raise FakeNewsError("--n must be at least 1")
    if rate is not None and rate <= 0:
        raise FakeNewsError("--rate must be positive")
    sample = headlines.sample(n=n, replace=n > len(headlines), random_state=seed).reset_index(drop=True)
    labelled = "label" in sample.columns
    if feedback and not labelled:
        raise FakeNewsError("--feedback needs labels, and the input has no 'label' column")
    outcomes: list[Outcome | None] = [None] * n
    pending: list[dict] = []
    state = {"next": 0, "feedback_stored": 0, "feedback_errors": []}
    lock = threading.Lock()
    bar = _progress_bar(n, progress)
    started = time.perf_counter()

    def send_feedback(rows: list[dict]) -> None:
        try:
            stored = target.feedback(rows)
        except Exception as exc:  # reported in the summary; the traffic goes on
            with lock:
                state["feedback_errors"].append(str(exc))
            return
        with lock:
            state["feedback_stored"] += stored

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                return
            if rate:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            title = sample.at[i, "title"]
            outcome = target.predict(title, origin)
            outcomes[i] = outcome
            batch = None
            with lock:
                if feedback and outcome.ok:
                    pending.append(
                        {"request_id": outcome.request_id, "title": title.strip(), "label": int(sample.at[i, "label"])}
                    )
                    if len(pending) >= target.feedback_batch:
                        batch = pending[:]
                        pending.clear()
                bar.update(1)
            if batch:
                send_feedback(batch)

    threads = [threading.Thread(target=worker, name=f"simulate-{k}", daemon=True) for k in range(max(1, concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for start in range(0, len(pending), target.feedback_batch):
        send_feedback(pending[start : start + target.feedback_batch])
    bar.close()
    return _summary(sample, outcomes, elapsed, state, labelled, feedback)


def _summary(
    sample: pd.DataFrame, outcomes: list[Outcome], elapsed: float, state: dict, labelled: bool, feedback: bool
) -> dict:
    ok = [o for o in outcomes if o.ok]
    errors = Counter(o.status for o in outcomes if not o.ok)
    latencies = np.array([o.seconds for o in ok]) * 1000
    summary = {
        "sent": len(outcomes),
        "ok": len(ok),
        "errors": sum(errors.values()),
        "errors_by_status": dict(errors),
        "first_error": next((o.error for o in outcomes if not o.ok), None),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(outcomes) / elapsed, 1) if elapsed else None,
        "latency_ms": {
            name: _round(np.percentile(latencies, q)) if len(latencies) else None
            for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
        },
        "predicted_fake_share": _round(np.mean([o.label for o in ok])) if ok else None,
        "model_versions": dict(Counter(o.model_version for o in ok)),
    }
    if labelled:
        truth = [int(sample.at[i, "label"]) for i, o in enumerate(outcomes) if o.ok]
        summary["accuracy"] = _round(np.mean([o.label == y for o, y in zip(ok, truth)])) if ok else None
        summary["true_fake_share"] = _round(np.mean(truth)) if truth else None
    if feedback:
        summary["feedback_stored"] = state["feedback_stored"]
        summary["feedback_errors"] = state["feedback_errors"][:3]
    return summary


def _round(value, digits: int = 4):
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _detail(response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:200]


def _progress_bar(total: int, enabled: bool):
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, unit="req", desc="simulate", file=sys.stderr, disable=not enabled)
