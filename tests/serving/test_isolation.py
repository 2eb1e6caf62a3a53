"""One bad request never fails another: a headline that passes every input check but breaks the model (a
real bundle whose embedding of one word is NaN) fails only its own request while it shares micro-batches
with many good ones; and a big CSV upload is parsed off the event loop, so /health keeps answering."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from fakenews_ml.config import ServeConfig
from fakenews_ml.monitoring.prediction_log import PredictionLog

POISON_WORD = "zebra"


@pytest.fixture(scope="module")
def poisoned_bundle(serving_encoder, tmp_path_factory):
    """A complete, correctly signed bundle whose model gives NaN for any headline containing ``zebra``."""
    import torch

    from fakenews_ml.bundle import save_bundle
    from fakenews_ml.config import ModelConfig
    from fakenews_ml.model.classifier import HeadlineClassifier
    from fakenews_ml.model.encoder import load_tokenizer

    config = ModelConfig(encoder=str(serving_encoder), max_length=32)
    torch.manual_seed(7)
    model = HeadlineClassifier.from_pretrained(config).eval()
    tokenizer = load_tokenizer(config)
    (token_id,) = tokenizer(POISON_WORD, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight[token_id] = float("nan")
    return save_bundle(
        tmp_path_factory.mktemp("poisoned") / "bundle",
        model,
        tokenizer,
        model.encoder.config,
        config,
        threshold=0.5,
        metrics={},
        lineage={},
    )


@pytest.fixture(scope="module")
def api(poisoned_bundle, server_starter, tmp_path_factory):
    from fakenews_ml.serving.app import create_app

    log = PredictionLog(f"sqlite:///{tmp_path_factory.mktemp('isolation') / 'predictions.sqlite'}")
    # one model slot: concurrent requests queue behind it and are merged into shared passes
    config = ServeConfig(workers=1, merge_rows=32, max_batch=16, max_upload_bytes=30_000_000)
    server = server_starter(create_app(poisoned_bundle, log, config))
    yield server
    server.stop()
    log.close()


def test_the_poisoned_headline_passes_the_checks_and_fails_alone(api, http):
    response = http.post(api.url("/predict"), json={"titles": [f"A {POISON_WORD} escapes the zoo"]})
    assert response.status_code == 422, response.text
    assert "the model's output is not a number" in response.json()["detail"]
    assert http.post(api.url("/predict"), json={"titles": ["A lion escapes the zoo"]}).status_code == 200


def test_many_good_requests_and_one_poisoned_client_share_passes_not_failures(api, http):
    batcher = api.app.state.holder.current.batcher
    split_before = batcher.split_passes
    api.flush()
    logged_before = api.app.state.log.count()
    good, bad = [], []
    stop = threading.Event()

    def good_client(k: int) -> None:
        with httpx.Client(timeout=60, trust_env=False) as client:
            for i in range(12):
                titles = [f"Council {k} approves budget {i}", f"Storm {k} hits the coast {i}"]
                response = client.post(api.url("/predict"), json={"titles": titles})
                good.append((response.status_code, len(response.json().get("predictions", []))))

    def poisoned_client() -> None:
        with httpx.Client(timeout=60, trust_env=False) as client:
            while not stop.is_set():
                response = client.post(api.url("/predict"), json={"titles": [f"Breaking: {POISON_WORD} news", "ok"]})
                bad.append((response.status_code, response.json()["detail"]))

    goods = [threading.Thread(target=good_client, args=(k,)) for k in range(16)]
    poison = threading.Thread(target=poisoned_client)
    poison.start()
    for thread in goods:
        thread.start()
    for thread in goods:
        thread.join()
    stop.set()
    poison.join()

    assert good == [(200, 2)] * (16 * 12)  # every good request answered, whatever it shared a pass with
    assert bad and all(status == 422 and "headline(s) 0" in detail for status, detail in bad)
    assert batcher.split_passes > split_before  # the poison did share merged passes, which were split
    api.flush()
    assert api.app.state.log.count() == logged_before + 16 * 12 * 2  # nothing of the poisoned requests


def test_a_big_csv_is_parsed_off_the_event_loop(api, http):
    rows = 1_500_000
    upload = b"title\n" + b"Headline\n" * rows  # 13.5 MB: seconds of parsing
    result = {}

    def send() -> None:
        started = time.monotonic()
        with httpx.Client(timeout=120, trust_env=False) as client:
            response = client.post(api.url("/predict/csv"), content=upload, headers={"content-type": "text/csv"})
        result.update(status=response.status_code, detail=response.json()["detail"], end=time.monotonic())
        result["seconds"] = result["end"] - started

    uploader = threading.Thread(target=send)
    uploader.start()
    time.sleep(0.2)  # the body is on its way; parsing starts once it has arrived
    latencies = []
    while uploader.is_alive():
        started = time.monotonic()
        assert http.get(api.url("/health")).status_code == 200
        latencies.append((started, time.monotonic() - started))
        time.sleep(0.02)
    uploader.join()
    assert result["status"] == 413 and f"{rows} CSV rows" in result["detail"]  # it was parsed whole
    during = [seconds for started, seconds in latencies if started < result["end"]]
    assert result["seconds"] > 1.0 and len(during) >= 3, (result, latencies)
    # A stalled event loop answers a /health sent during the parse only after it: nearly the whole parse time.
    # Half of it (at least 1 s) leaves room for a busy CI core delaying one answer.
    assert max(during) < max(1.0, 0.5 * result["seconds"]), (result["seconds"], during)
