"""Feedback is checked when it arrives, with the feedback suite's own bounds: whatever the store accepts, the
suite accepts at retrain time (one label can never block every later retrain), and whatever the suite
would reject is refused by POST /feedback, by the store and by ``fakenews feedback import``, naming the row."""

from __future__ import annotations

import csv

import pytest

from fakenews_ml.cli import main
from fakenews_ml.config import ServeConfig
from fakenews_ml.data.validation import validate_news
from fakenews_ml.errors import InputError
from fakenews_ml.monitoring.feedback_rules import feedback_validation_config
from fakenews_ml.monitoring.prediction_log import PredictionLog

BOUNDS = feedback_validation_config()
GOOD = [{"title": f"A perfectly fine labelled headline number {i}", "label": i % 2} for i in range(150)]

REJECTED = {
    "title too short": ({"title": "ab", "label": 1}, "title is 2 characters long"),
    "title short once stripped": ({"title": "   x   ", "label": 0}, "title is 1 characters long"),
    "title too long": (
        {"title": "y" * (BOUNDS.max_title_chars + 1), "label": 0},
        "title is 1001 characters long; feedback titles must have 3 to 1000",
    ),
    "emoji title": ({"title": "🔥🔥🔥🔥", "label": 1}, "title has no letters or digits"),
    "invisible title": ({"title": "\u200b\u200b\u200b\u200b", "label": 1}, "title has no letters or digits"),
    "nul in title": ({"title": "Headline\x00here", "label": 1}, "title contains a NUL character"),
    "label 2": ({"title": "A fine headline", "label": 2}, "label must be 0 (real) or 1 (fake)"),
    "label as text": ({"title": "A fine headline", "label": "1"}, "label must be 0"),
    "no label": ({"title": "A fine headline", "label": None}, "label must be 0"),
}


@pytest.fixture
def log(tmp_path):
    with PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}") as store:
        yield store


@pytest.mark.parametrize("row, message", list(REJECTED.values()), ids=list(REJECTED))
def test_the_store_refuses_what_the_suite_would_reject(log, row, message):
    # one bad row among 150 good ones: the suite's 1% tolerance would let it through, the store does not
    rows = GOOD[:100] + [row] + GOOD[100:]
    with pytest.raises(InputError) as info:
        log.add_feedback(rows)
    assert f"feedback row 100: {message}" in str(info.value)
    assert log.feedback_count() == 0


@pytest.mark.parametrize(
    "title",
    ["abc", "x" * BOUNDS.max_title_chars, "  padded but long enough  ", "Ünïcödé", "数字新闻", "🔥 Fire 🔥", "2024"],
)
def test_what_the_store_accepts_the_suite_accepts(log, title):
    log.add_feedback([{"title": title, "label": 1}, {"title": "Another fine headline", "label": 0}])
    report = validate_news(log.feedback_frame(), BOUNDS)
    assert report.success, report.summary()


def test_linked_feedback_is_checked_on_the_title_it_links_to(log):
    ids = log.log_predictions(
        [
            {"request_id": "r1", "title": "ab", "prob_fake": 0.3, "label": 0, "model_version": "v"},
            {"request_id": "r1", "title": "A long enough title", "prob_fake": 0.6, "label": 1, "model_version": "v"},
        ]
    )
    with pytest.raises(InputError, match="feedback row 0: title is 2 characters long"):
        log.add_feedback([{"prediction_id": ids[0], "label": 1}])
    assert log.add_feedback([{"prediction_id": ids[1], "label": 1}])


def test_rows_from_before_the_arrival_checks_can_still_be_recreated(log):
    """For tests of the retrain-time quarantine: rows stored before arrival checks existed."""
    assert log.add_feedback([{"title": "ab", "label": 1}], arrival_checks=False)
    assert not validate_news(log.feedback_frame(), BOUNDS).success


# --- POST /feedback -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(bundles, server_starter, tmp_path_factory):
    from fakenews_ml.serving.app import create_app

    store = PredictionLog(f"sqlite:///{tmp_path_factory.mktemp('arrival') / 'predictions.sqlite'}")
    server = server_starter(create_app(bundles["v1"], store, ServeConfig(max_batch=256, max_title_chars=2000)))
    yield server
    server.stop()
    store.close()


@pytest.mark.parametrize("row, message", list(REJECTED.values()), ids=list(REJECTED))
def test_post_feedback_refuses_what_the_suite_would_reject(api, http, row, message):
    before = api.app.state.log.feedback_count()
    response = http.post(api.url("/feedback"), json=[*GOOD[:3], row])
    assert response.status_code == 422, response.text
    assert f"feedback row 3: {message}" in response.json()["detail"]
    assert api.app.state.log.feedback_count() == before


def test_post_feedback_on_a_served_headline_too_short_for_training(api, http):
    served = http.post(api.url("/predict"), json={"titles": ["ab"]}).json()  # the API classifies it
    response = http.post(api.url("/feedback"), json=[{"request_id": served["request_id"], "label": 1}])
    assert response.status_code == 422 and "title is 2 characters long" in response.json()["detail"]


# --- fakenews feedback import -------------------------------------------------------------------------------


def _write(path, rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "label"])
        writer.writerows([[row["title"], "" if row["label"] is None else row["label"]] for row in rows])


@pytest.mark.parametrize(
    "row, message",
    [value for key, value in REJECTED.items() if key not in ("label as text", "no label", "title short once stripped")],
    ids=[key for key in REJECTED if key not in ("label as text", "no label", "title short once stripped")],
)
def test_feedback_import_refuses_what_the_suite_would_reject(tmp_path, row, message, capsys):
    log_url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    path = tmp_path / "labels.csv"
    _write(path, [*GOOD[:120], row, *GOOD[120:]])
    code = main(["feedback", "import", str(path), "--log-url", log_url])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert ("CSV line 122" in err or "label" in message) and ("nothing imported" in err or "label" in message)
    if "label" not in message:
        assert message in err
    with PredictionLog(log_url) as store:
        assert store.feedback_count() == 0
