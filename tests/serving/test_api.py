"""The HTTP API over real HTTP (uvicorn on 127.0.0.1): predictions, CSV, feedback, health, metrics, and
every kind of bad request (right status, a message naming the problem, nothing logged, no harm done)."""

from __future__ import annotations

import csv
import io
import threading

import httpx
import pytest

from fakenews_ml.config import ServeConfig
from fakenews_ml.monitoring.prediction_log import PredictionLog

LIMITS = ServeConfig(max_batch=8, max_title_chars=200, max_upload_bytes=4096, reload_check_s=0.2)


@pytest.fixture(scope="module")
def api(bundles, server_starter, tmp_path_factory):
    from fakenews_ml.serving.app import create_app

    log = PredictionLog(f"sqlite:///{tmp_path_factory.mktemp('api') / 'predictions.sqlite'}")
    server = server_starter(create_app(bundles["v1"], log, LIMITS))
    yield server
    server.stop()
    log.close()


def logged(api) -> int:
    api.flush()
    return api.app.state.log.count()


def metric(api, http, line_start: str) -> float:
    for line in http.get(api.url("/metrics")).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_predict_returns_one_item_per_title_in_order_and_logs_them(api, http):
    titles = ["Senate passes the annual budget", "You won't believe this miracle cure!!!", "Storm hits the coast"]
    response = http.post(api.url("/predict"), json={"titles": titles})
    assert response.status_code == 200, response.text
    body = response.json()
    version = api.app.state.holder.current.version
    assert body["model_version"] == version and body["variant"] == "fp32"
    assert response.headers["x-request-id"] == body["request_id"]
    assert [item["title"] for item in body["predictions"]] == titles
    for item in body["predictions"]:
        assert 0.0 <= item["prob_fake"] <= 1.0
        assert item["label"] == int(item["prob_fake"] >= 0.5)  # the bundle's threshold
        assert item["verdict"] == ("fake" if item["label"] else "real")
        assert item["model_version"] == version and item["request_id"] == body["request_id"]
    api.flush()
    rows = api.app.state.log.by_request(body["request_id"])
    assert list(rows["title"]) == titles
    assert list(rows["label"]) == [item["label"] for item in body["predictions"]]
    assert rows["prob_fake"].round(6).tolist() == [item["prob_fake"] for item in body["predictions"]]
    assert set(rows["model_version"]) == {version} and set(rows["origin"]) == {"api"}


def test_predict_accepts_a_bare_list_and_an_origin_tag(api, http):
    assert (
        http.post(api.url("/predict"), json=["  Padded headline  "]).json()["predictions"][0]["title"]
        == "Padded headline"
    )
    body = http.post(api.url("/predict"), json={"titles": ["From the dashboard"], "origin": "dashboard"}).json()
    api.flush()
    assert list(api.app.state.log.by_request(body["request_id"])["origin"]) == ["dashboard"]


BAD_JSON = [
    ({"titles": []}, 422, "no headlines given"),
    ([], 422, "no headlines given"),
    ({"titles": ["fine", 42]}, 422, "headline 1 is a number, not a string"),
    ({"titles": ["fine", None]}, 422, "headline 1 is null"),
    ({"titles": ["fine", "   "]}, 422, "headline 1 is empty"),
    ({"titles": ["x" * 201]}, 422, "headline 0 is 201 characters long; the limit is 200"),
    ({"titles": ["headline"] * 9}, 413, "9 headlines in one request; the limit is 8"),
    ({"titles": "one headline"}, 422, '"titles" must be a list'),
    ({"headlines": ["a"]}, 422, "unknown field(s) ['headlines']"),
    ({}, 422, 'missing "titles"'),
    ("just a string", 422, "got str"),
    ({"titles": ["ok"], "origin": "bad tag!"}, 422, '"origin" must be a short tag'),
]


@pytest.mark.parametrize("body, status, message", BAD_JSON)
def test_bad_json_requests_are_named_and_not_logged(api, http, body, status, message):
    before = logged(api)
    response = http.post(api.url("/predict"), json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert logged(api) == before


@pytest.mark.parametrize(
    "content, status, message",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty request body"),
        (b"\xff\xfe\x00", 400, "not valid JSON"),
        (b"[" * 2000 + b"]" * 2000, 400, "nested too deeply"),
    ],
)
def test_unparseable_bodies(api, http, content, status, message):
    before = logged(api)
    response = http.post(api.url("/predict"), content=content, headers={"content-type": "application/json"})
    assert response.status_code == status and message in response.json()["detail"]
    assert logged(api) == before


def test_oversized_bodies_get_413_declared_or_streamed(api, http):
    before = logged(api)
    big = {"titles": ["a" * 150] * 30}  # ~4.6 KB > 4096
    response = http.post(api.url("/predict"), json=big)
    assert response.status_code == 413 and "limit is 4096 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold on the streamed bytes too
        for _ in range(10):
            yield b"x" * 1000

    response = http.post(api.url("/predict"), content=chunks())
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]
    assert "the limit is 4096 bytes" in response.json()["detail"]
    one_mb = "x" * 1_000_000  # the headline nobody should ever send
    try:
        response = http.post(api.url("/predict"), json={"titles": [one_mb]})
        assert response.status_code == 413
    except httpx.TransportError:
        pass  # the server answered 413 and closed while the client was still sending: the upload was refused
    assert logged(api) == before
    assert http.get(api.url("/health")).status_code == 200  # and the server is fine


def test_csv_upload_returns_every_row_in_order(api, http):
    source = io.StringIO()
    writer = csv.writer(source)
    writer.writerow(["id", "title", "outlet", "label"])
    titles = ["First, with a comma", "Second\nwith a newline", 'Third "quoted"', "Fourth"]
    for i, title in enumerate(titles):
        writer.writerow([i, title, f"outlet {i}", "truth"])
    response = http.post(api.url("/predict/csv"), files={"file": ("news.csv", source.getvalue().encode(), "text/csv")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    out = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["title"] for row in out] == titles
    assert [row["id"] for row in out] == ["0", "1", "2", "3"] and out[0]["outlet"] == "outlet 0"
    assert all(row["label_input"] == "truth" for row in out)  # an input column named like an output is kept
    assert all(0 <= float(row["prob_fake"]) <= 1 and row["label"] in ("0", "1") for row in out)
    api.flush()
    rows = api.app.state.log.by_request(response.headers["x-request-id"])
    assert list(rows["title"]) == titles


def test_csv_as_raw_body(api, http):
    response = http.post(
        api.url("/predict/csv?origin=batch-job"),
        content=b"title\nRaw CSV body headline\n",
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200 and "Raw CSV body headline" in response.text
    api.flush()
    assert list(api.app.state.log.by_request(response.headers["x-request-id"])["origin"]) == ["batch-job"]


@pytest.mark.parametrize(
    "files, data, status, message",
    [
        ({"file": ("latin.csv", "title\nCaf\xe9 wins\n".encode("latin-1"))}, None, 422, "latin.csv: not valid UTF-8"),
        ({"file": ("cols.csv", b"headline\nabc\n")}, None, 422, "no 'title' column (found: ['headline'])"),
        ({"file": ("blank.csv", b"title,x\nfine,1\n,2\n")}, None, 422, "empty title (CSV line(s) 3)"),
        ({"file": ("empty.csv", b"")}, None, 422, "the file is empty"),
        ({"file": ("header.csv", b"title\n")}, None, 422, "no CSV rows given"),
        ({"file": ("many.csv", b"title\n" + b"row\n" * 9)}, None, 413, "9 CSV rows in one request; the limit is 8"),
        (
            {"file": ("long.csv", b"title\nshort\n" + b"y" * 300 + b"\n")},
            None,
            422,
            "long.csv: the title on CSV line 3 is 300 characters",
        ),
        (None, {"field": "no file"}, 415, "expected a multipart/form-data upload"),
    ],
)
def test_bad_csv_uploads(api, http, files, data, status, message):
    before = logged(api)
    if files is None:
        response = http.post(api.url("/predict/csv"), data=data)
    else:
        response = http.post(api.url("/predict/csv"), files=files)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert logged(api) == before


def test_multipart_without_a_file(api, http):
    response = http.post(api.url("/predict/csv"), files={"note": (None, "just a field")})
    assert response.status_code == 422 and "no file in the upload" in response.json()["detail"]


def test_bad_requests_do_not_disturb_concurrent_good_ones(api, http):
    import httpx

    before = logged(api)
    results, bad_statuses = [], []

    def good(k):
        with httpx.Client(timeout=30, trust_env=False) as client:
            for i in range(5):
                r = client.post(api.url("/predict"), json={"titles": [f"Good headline {k}-{i}", "Another one"]})
                results.append((r.status_code, len(r.json().get("predictions", []))))

    def bad():
        with httpx.Client(timeout=30, trust_env=False) as client:
            for body in ({"titles": [1]}, {"titles": ["x" * 5000]}, {"titles": []}, {"titles": ["a"] * 50}) * 3:
                bad_statuses.append(client.post(api.url("/predict"), json=body).status_code)

    threads = [threading.Thread(target=good, args=(k,)) for k in range(4)] + [
        threading.Thread(target=bad) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, 2)] * 20
    assert sorted(set(bad_statuses)) == [413, 422] and len(bad_statuses) == 24
    assert logged(api) == before + 40


def test_feedback_endpoint(api, http):
    body = http.post(api.url("/predict"), json={"titles": ["Label me later", "Me too"]}).json()
    response = http.post(
        api.url("/feedback"),
        json=[
            {"request_id": body["request_id"], "title": "Label me later", "label": 1},
            {"title": "A headline we never served", "label": 0, "source": "editor"},
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 2
    table = api.app.state.log.feedback_table().set_index("id").loc[response.json()["feedback_ids"]]
    assert table["prediction_id"].notna().tolist() == [True, False]
    assert table["source"].tolist() == ["api", "editor"]
    count = api.app.state.log.feedback_count()
    for bad, message in (
        ([{"request_id": body["request_id"], "label": 1}], "has 2 headlines; give the title"),
        ([{"request_id": "no-such-request", "title": "x", "label": 1}], "not in the prediction log"),
        ([{"title": "fine", "label": 0}, {"title": "bad label", "label": 3}], "feedback row 1: label must be 0"),
        ([{"title": "x", "label": 1, "verdict": "fake"}], "unknown field(s) ['verdict']"),
        ({"title": "x", "label": 1}, "expected a JSON list"),
    ):
        response = http.post(api.url("/feedback"), json=bad)
        assert response.status_code == 422 and message in response.json()["detail"], response.text
    assert api.app.state.log.feedback_count() == count  # all or nothing


def test_health(api, http):
    body = http.get(api.url("/health?flush=5")).json()
    holder = api.app.state.holder
    assert body["status"] == "ok" and body["model_version"] == holder.current.version
    assert body["champion"] == "v1" and body["variant"] == "fp32" and body["uptime_s"] >= 0
    assert body["log"]["backlog"] == 0 and body["log"]["written"] == api.app.state.log.count()


def test_metrics_count_requests_latency_and_labels(api, http):
    ok_before = metric(api, http, 'fakenews_http_requests_total{endpoint="/predict",status="200"}')
    bad_before = metric(api, http, 'fakenews_http_requests_total{endpoint="/predict",status="422"}')
    fake_before = metric(api, http, 'fakenews_predictions_total{label="fake"}')
    real_before = metric(api, http, 'fakenews_predictions_total{label="real"}')
    body = http.post(api.url("/predict"), json={"titles": ["One", "Two", "Three"]}).json()
    http.post(api.url("/predict"), json={"titles": []})
    http.get(api.url("/no/such/path"))
    fakes = sum(item["label"] for item in body["predictions"])
    assert metric(api, http, 'fakenews_http_requests_total{endpoint="/predict",status="200"}') == ok_before + 1
    assert metric(api, http, 'fakenews_http_requests_total{endpoint="/predict",status="422"}') == bad_before + 1
    assert metric(api, http, 'fakenews_http_requests_total{endpoint="other",status="404"}') >= 1
    assert metric(api, http, 'fakenews_predictions_total{label="fake"}') == fake_before + fakes
    assert metric(api, http, 'fakenews_predictions_total{label="real"}') == real_before + 3 - fakes
    text = http.get(api.url("/metrics")).text
    assert 'fakenews_http_request_duration_seconds_bucket{endpoint="/predict",le="0.015"}' in text
    assert metric(api, http, 'fakenews_http_request_duration_seconds_count{endpoint="/predict"}') >= ok_before + 2
    assert f'version="{api.app.state.holder.current.version}"' in text
    assert "fakenews_prediction_log_backlog_rows" in text


def test_two_apps_in_one_process_have_separate_metrics(bundles, tmp_path):
    from fakenews_ml.serving.app import create_app

    first = create_app(bundles["v1"], PredictionLog("sqlite://"), LIMITS)
    second = create_app(bundles["v1"], PredictionLog("sqlite://"), LIMITS)
    assert first.state.metrics.registry is not second.state.metrics.registry
    for app in (first, second):
        app.state.writer.close()


def test_an_explicit_model_that_is_not_a_bundle_fails_at_startup(tmp_path):
    from fakenews_ml.errors import BundleError
    from fakenews_ml.serving.app import create_app

    with pytest.raises(BundleError, match="could not load|not a model bundle"):
        create_app(tmp_path / "nothing-here", PredictionLog("sqlite://"), LIMITS)


def test_an_int8_champion_is_named_by_its_bundles_version_in_health_answers_and_the_log(
    bundles, server_starter, tmp_path, http
):
    """One model, one version: served as its int8 variant, the champion answers /health, /predict and the log
    with the bundle's version, and says int8 in its own field."""
    import shutil

    import pandas as pd

    from fakenews_ml.bundle import read_meta
    from fakenews_ml.config import QuantizeConfig
    from fakenews_ml.quantize import quantize_bundle
    from fakenews_ml.serving.app import create_app

    bundle = shutil.copytree(bundles["v1"], tmp_path / "v1")
    frame = pd.DataFrame({"title": [f"Senate passes budget number {i}" for i in range(12)], "label": [0, 1] * 6})
    quantize_bundle(bundle, frame, QuantizeConfig(variants=["int8"], max_accuracy_drop=1.0, min_agreement=0.0))
    version = read_meta(bundle)["version"]
    with PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}") as log:
        server = server_starter(create_app(bundle, log, LIMITS, variant="int8"))
        try:
            health = http.get(server.url("/health")).json()
            assert (health["model_version"], health["variant"]) == (version, "int8")
            body = http.post(server.url("/predict"), json={"titles": ["Storm hits the coast"]}).json()
            assert body["model_version"] == body["predictions"][0]["model_version"] == version
            server.flush()
            assert set(log.by_request(body["request_id"])["model_version"]) == {version}
        finally:
            server.stop()
