"""A new champion is picked up without a restart, requests in flight never fail, and a champion that
cannot be loaded leaves the serving model in place."""

from __future__ import annotations

import shutil
import threading
import time

from fakenews_ml.config import ServeConfig
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.registry import champion_link, promote


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_champion_swaps_without_restart(bundles, server_starter, http, tmp_path, fakenews_home):
    from fakenews_ml.bundle import read_meta
    from fakenews_ml.serving.app import create_app

    v1, v2 = read_meta(bundles["v1"])["version"], read_meta(bundles["v2"])["version"]
    assert v1 != v2
    models = fakenews_home / "models"  # promotion names bundles in the artifact store
    stored = {name: shutil.copytree(bundles[name], models / name) for name in ("v1", "v2")}
    log = PredictionLog(f"sqlite:///{tmp_path / 'predictions.sqlite'}")
    # No champion yet: the API starts anyway and answers 503 until one is promoted.
    api = server_starter(create_app(None, log, ServeConfig(reload_check_s=0.1)))
    try:
        health = http.get(api.url("/health"))
        assert health.status_code == 503 and health.json()["status"] == "no_model"
        assert str(champion_link()) == health.json()["model_source"]
        response = http.post(api.url("/predict"), json={"titles": ["Too early"]})
        assert response.status_code == 503 and "promote a champion" in response.json()["detail"]

        promote(stored["v1"], reason="first")
        wait_for(lambda: http.get(api.url("/health")).json().get("model_version") == v1, what="v1 to be served")
        assert http.post(api.url("/predict"), json={"titles": ["Now served"]}).json()["model_version"] == v1

        # Promote v2 while clients keep sending: every request succeeds, each answered by a whole model.
        stop, outcomes = threading.Event(), []

        def client():
            import httpx

            with httpx.Client(timeout=30, trust_env=False) as session:
                while not stop.is_set():
                    r = session.post(api.url("/predict"), json={"titles": ["During the swap", "Second title"]})
                    body = r.json()
                    outcomes.append((r.status_code, {item["model_version"] for item in body["predictions"]}))

        threads = [threading.Thread(target=client) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        promote(stored["v2"], reason="better")
        health = wait_for(
            lambda: (h := http.get(api.url("/health")).json())["model_version"] == v2 and h, what="v2 to be served"
        )
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        assert health["champion"] == "v2" and health["model_loads"] == 2 and health["reload_error"] is None
        assert outcomes and all(status == 200 for status, _ in outcomes)
        assert all(len(versions) == 1 for _, versions in outcomes)  # never two models in one answer
        seen = {next(iter(versions)) for _, versions in outcomes}
        assert v2 in seen
        assert http.post(api.url("/predict"), json={"titles": ["After"]}).json()["model_version"] == v2

        # A broken champion (weights that fail their checksum) is refused; v2 keeps serving.
        broken = shutil.copytree(bundles["v1"], models / "broken")
        weights = broken / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
        promote(broken, reason="corrupt")
        error = wait_for(lambda: http.get(api.url("/health")).json()["reload_error"], what="the reload error")
        assert "broken" in error and "checksum" in error
        assert http.post(api.url("/predict"), json={"titles": ["Still fine"]}).json()["model_version"] == v2

        api.flush()
        versions = set(log.window("2000-01-01", "2100-01-01")["model_version"])
        assert versions == {v1, v2}
    finally:
        api.stop()
        log.close()


def test_a_loaded_model_is_traced_and_kept_out_of_the_cyclic_collector(bundles):
    import gc

    import torch

    from fakenews_ml.config import PredictConfig
    from fakenews_ml.serving.model_holder import ModelHolder

    gc.unfreeze()
    holder = ModelHolder(bundles["v1"], PredictConfig(trace=True))
    assert holder.refresh()
    served = holder.current
    assert isinstance(served.predictor.forward_model, torch.jit.ScriptModule)
    assert gc.get_freeze_count() > 10_000  # the model's objects: full collections no longer walk them
    assert served.batcher.predict(["Some headline"])[1][0] in (0, 1)
