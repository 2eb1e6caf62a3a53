"""The lifecycle in a shared bucket (gcp-storage-emulator, the real google-cloud-storage client): one machine
materializes it, a second with an empty disk serves the champion and a third retrains from what the bucket holds;
the second one's API picks up the third one's promotion without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import GOOD_TRAINING, materialize, run_config
from .data import write_news_csv


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_second_machine_serves_and_a_third_retrains_from_the_bucket(
    gcs_bucket, tmp_path, tiny_encoder_dir, port_finder, monkeypatch
):
    import httpx

    monkeypatch.setenv("FAKENEWS_STORE", gcs_bucket.uri)
    sources = write_news_csv(tmp_path / "news.csv", n=300, seed=21)
    config = run_config(tiny_encoder_dir)

    # machine A: the whole lifecycle into the bucket
    first = materialize(tmp_path / "machine_a", sources, config)
    assert first.result.success, first.failed_steps
    stored = gcs_bucket.objects("fakenews/")
    champion = json.loads(stored["fakenews/production/champion.json"])["location"]
    assert (
        f"fakenews/{champion}/model.safetensors" in stored
        and f"fakenews/{champion}/variants/int8/bundle.json" in stored
    )
    manifests = {name: body for name, body in stored.items() if name.startswith("fakenews/dagster/manifests/")}
    assert len(manifests) >= 10 and all(json.loads(body)["stage"] for body in manifests.values())  # JSON, no pickles
    version = first.metadata["production_model"]["champion_version"]

    # machine B: an empty FAKENEWS_HOME serves the champion from the bucket
    port, machine_b = port_finder(), tmp_path / "machine_b"
    env = {
        **os.environ,
        "FAKENEWS_HOME": str(machine_b),
        "PYTHONUNBUFFERED": "1",
        "FAKENEWS_PREDICTION_LOG_URL": f"sqlite:///{tmp_path / 'b.sqlite'}",
    }
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the server writes to it until the test ends
    api = subprocess.Popen(
        [sys.executable, "-m", "fakenews_ml.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as http:

            def health():
                try:
                    response = http.get("/health")
                except httpx.TransportError:
                    return None
                return response.json() if response.status_code == 200 else None

            served = _wait_for(health, 120, "machine B to serve the champion")
            assert served["model_version"] == version and (machine_b / champion / "model.safetensors").is_file()
            answer = http.post("/predict", json={"titles": ["Shocking secret the president exposed today"]})
            assert answer.status_code == 200 and answer.json()["model_version"] == version

            # machine C: a retrain with another setting, from an empty disk; the data steps reuse A's artifacts
            changed = run_config(tiny_encoder_dir, {**GOOD_TRAINING, "max_steps": 41})
            retrain = materialize(tmp_path / "machine_c", sources, changed)
            assert retrain.result.success, retrain.failed_steps
            assert retrain.metadata["trained_model"]["reused"] is False
            assert retrain.metadata["production_model"]["promoted"] is True
            new_version = retrain.metadata["production_model"]["champion_version"]
            assert new_version != version
            assert (
                json.loads(gcs_bucket.objects("fakenews/production/")["fakenews/production/champion.json"])["location"]
                != champion
            )

            # machine B's API follows the promotion made on machine C, without a restart
            _wait_for(lambda: (h := health()) and h["model_version"] == new_version, 120, "the new champion")
            assert (
                http.post("/predict", json={"titles": ["Senate passes the budget"]}).json()["model_version"]
                == new_version
            )
    finally:
        api.terminate()
        api.wait(timeout=30)
        log.close()
    history = [json.loads(body) for name, body in gcs_bucket.objects("fakenews/production/promotions/").items()]
    assert sorted(r["version"] for r in history) == sorted([version, new_version])
