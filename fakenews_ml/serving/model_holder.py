"""The model the API serves, swapped for a new champion without a restart.

``ModelHolder.refresh`` looks at the model source (the production link, or a bundle folder) with a few
``stat`` calls: when the resolved bundle or its ``bundle.json``/``quantization.json`` changed, it loads the
new model completely and only then swaps one reference. Requests read that reference once and keep the
model they got for the whole request, so none ever sees a half-loaded model or mixes two versions. A
champion that fails to load is reported (``reload_error``) and the old model keeps serving.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fakenews_ml.bundle import read_meta
from fakenews_ml.config import PredictConfig
from fakenews_ml.predict import Predictor
from fakenews_ml.serving.batcher import BatchingPredictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    predictor: Predictor  # for direct use (embeddings); requests go through ``batcher``
    batcher: BatchingPredictor
    version: str  # the champion bundle's version (what the registry lists), not its variant's
    variant: str
    bundle_path: Path
    loaded_at: datetime


class ModelHolder:
    def __init__(
        self,
        source: Path,
        predict_config: PredictConfig,
        variant: str = "auto",
        check_interval_s: float = 1.0,
        workers: int = 1,
        merge_rows: int = 32,
        sync=None,
    ):
        """``sync`` (optional) is called before each look at ``source``: for the champion of a bucket store it
        re-points the local link when another machine promoted a new champion."""
        self.source = Path(source)
        self.sync = sync
        self.workers = workers
        self.merge_rows = merge_rows
        self.predict_config = predict_config
        self.variant = variant
        self.check_interval_s = check_interval_s
        self.reloads = 0
        self.reload_error: str | None = None
        self._current: ServedModel | None = None
        self._key = None
        self._failed_key = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def current(self) -> ServedModel | None:
        return self._current

    def _fingerprint(self):
        """What identifies the bundle behind the source, from a few stat calls (cheap enough for 1/s)."""
        if self.sync is not None:
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - an unreachable store must not stop the serving model
                log.warning("could not check the store for a new champion: %s", exc)
        target = os.path.realpath(self.source)
        try:
            meta_mtime = os.stat(os.path.join(target, "bundle.json")).st_mtime_ns
        except OSError:
            return None  # no champion (yet), or a dangling link: keep whatever is serving
        try:
            report_mtime = os.stat(os.path.join(target, "quantization.json")).st_mtime_ns
        except OSError:
            report_mtime = None  # quantized later: the 'auto' variant changes, so it counts as new
        return target, meta_mtime, report_mtime

    def refresh(self) -> bool:
        """Load the source's bundle if it changed since the last look; True when a new model now serves."""
        with self._lock:  # one loader at a time; requests never take this lock
            key = self._fingerprint()
            if key is None or key == self._key or key == self._failed_key:
                return False
            bundle_path = Path(key[0])
            try:
                version = read_meta(bundle_path)["version"]
                predictor = Predictor.from_path(bundle_path, self.variant, self.predict_config)
                predictor.predict(["warm-up headline"])  # first-call kernel selection off the request path
            except Exception as exc:  # a broken champion must not take the serving one down
                self._failed_key = key
                self.reload_error = f"could not load {bundle_path}: {type(exc).__name__}: {exc}"
                log.error(
                    "%s; still serving %s", self.reload_error, self._current.version if self._current else "nothing"
                )
                return False
            batcher = BatchingPredictor(
                predictor.bundle, self.predict_config, self.workers, self.merge_rows, predictor.forward_model
            )
            self._current = ServedModel(
                predictor, batcher, version, predictor.bundle.variant, bundle_path, datetime.now(UTC)
            )
            self._key, self._failed_key, self.reload_error = key, None, None
            # the previous model finishes the requests that picked it and is freed after the last one
            self.reloads += 1
            log.info("serving model %s (%s) from %s", version, predictor.bundle.variant, bundle_path)
        _settle_heap()
        return True

    def start_watching(self) -> None:
        """Check for a new champion every ``check_interval_s`` in a background thread."""
        if self._watcher is not None:
            return
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
            self._watcher = None

    def close(self) -> None:
        self.stop_watching()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            try:
                self.refresh()
            except Exception:  # never let the watcher die: the next tick tries again
                log.exception("champion check failed")
                time.sleep(self.check_interval_s)


def _settle_heap() -> None:
    """Collect what an earlier model left behind, then freeze the survivors (mostly the model's half a
    million objects) out of the cyclic collector's reach: otherwise every full collection walks them all,
    a 100-250 ms pause for every request in flight (the API's p99 under load)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
