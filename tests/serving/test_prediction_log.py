"""The prediction log store: round trips, UTC windows, feedback validation and linking, and no lost rows
under concurrent writers (threads and processes at once)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from fakenews_ml.errors import InputError
from fakenews_ml.monitoring.prediction_log import PredictionLog


def rows(n, request_id="r1", **extra):
    return [
        {
            "request_id": request_id,
            "title": f"Headline {request_id} {i}",
            "prob_fake": i / max(n, 1),
            "label": i % 2,
            "model_version": "v1",
            **extra,
        }
        for i in range(n)
    ]


@pytest.fixture
def log(tmp_path):
    store = PredictionLog(f"sqlite:///{tmp_path / 'log' / 'predictions.sqlite'}")
    yield store
    store.close()


def test_default_url_is_sqlite_under_fakenews_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKENEWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FAKENEWS_PREDICTION_LOG_URL", raising=False)
    with PredictionLog() as store:
        store.log_predictions(rows(1))
        assert store.url.startswith("sqlite:///") and str(tmp_path / "home") in store.url
        assert (tmp_path / "home" / "logs" / "predictions.sqlite").is_file()


def test_round_trip_ids_and_columns(log):
    ids = log.log_predictions(rows(3) + rows(2, request_id="r2", origin="simulator"))
    assert ids == sorted(ids) and len(set(ids)) == 5
    frame = log.by_request("r1")
    assert list(frame["title"]) == ["Headline r1 0", "Headline r1 1", "Headline r1 2"]
    assert list(frame["origin"]) == ["api"] * 3 and list(log.by_request("r2")["origin"]) == ["simulator"] * 2
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert log.count() == 5
    assert list(log.recent(2)["id"]) == [ids[4], ids[3]]  # newest first


def test_window_is_half_open_and_utc(log):
    base = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)
    stamps = [base, base + timedelta(minutes=29), base + timedelta(minutes=30), base + timedelta(hours=2)]
    log.log_predictions([{**row, "created_at": ts} for row, ts in zip(rows(4), stamps)])
    day = log.window("2024-05-01", "2024-05-02")
    assert len(day) == 2  # 23:30 and 23:59; midnight belongs to the next day
    # An aware timestamp in another zone means the same instant: 02:00+02:00 == 00:00 UTC.
    plus2 = timezone(timedelta(hours=2))
    assert len(log.window(datetime(2024, 5, 2, 2, 0, tzinfo=plus2), datetime(2024, 5, 2, 3, 0, tzinfo=plus2))) == 1
    assert log.count_since(base + timedelta(minutes=30)) == 2
    assert log.daily_counts().to_dict("records") == [
        {"day": "2024-05-01", "count": 2},
        {"day": "2024-05-02", "count": 2},
    ]
    assert log.window("2030-01-01", "2030-01-02").empty


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"title": ""}, "empty title"),
        ({"label": 2}, "out of range"),
        ({"prob_fake": 1.5}, "out of range"),
    ],
)
def test_bad_prediction_rows_are_refused_whole(log, bad, message):
    batch = rows(3)
    batch[1] = {**batch[1], **bad}
    with pytest.raises(InputError, match=message):
        log.log_predictions(batch)
    assert log.count() == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_log_url(request, tmp_path) -> str:
    """A fresh, empty log database: a SQLite file, or a new PostgreSQL database (tests/conftest.py)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite'}"
    return request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://", 1)


def test_concurrent_threads_and_processes_lose_no_rows(shared_log_url):
    """8 writers, 6 threads here and 2 other processes, write at the same time into a fresh database (the
    processes also race to create the tables): every row must land, each id once."""
    url = shared_log_url
    batches, batch_rows = 40, 5
    script = textwrap.dedent(f"""
        import sys
        from fakenews_ml.monitoring.prediction_log import PredictionLog
        log = PredictionLog({url!r})
        tag = sys.argv[1]
        for b in range({batches}):
            log.log_predictions([{{"request_id": f"{{tag}}-{{b}}", "title": f"t {{tag}} {{b}} {{i}}", "prob_fake": 0.5,
                                  "label": 1, "model_version": "v", "origin": "process"}} for i in range({batch_rows})])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{k}"]) for k in range(2)]
    store = PredictionLog(url)
    errors = []

    def write(tag):
        try:
            for b in range(batches):
                store.log_predictions(rows(batch_rows, request_id=f"{tag}-{b}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    assert not errors
    frame = store.window("2000-01-01", "2100-01-01")
    assert len(frame) == (6 + 2) * batches * batch_rows
    assert frame["id"].is_unique
    assert (frame["origin"] == "process").sum() == 2 * batches * batch_rows
    assert frame.groupby("request_id").size().eq(batch_rows).all()  # every batch whole, none twice
    store.close()


def test_in_memory_sqlite_is_shared_across_threads():
    store = PredictionLog("sqlite://")
    thread = threading.Thread(target=store.log_predictions, args=(rows(3),))
    thread.start()
    thread.join()
    assert store.count() == 3


# ----- feedback -----------------------------------------------------------------------------------------


def test_feedback_links_by_prediction_id_and_by_request_and_title(log):
    ids = log.log_predictions(rows(3))
    stored = log.add_feedback(
        [
            {"prediction_id": ids[0], "label": 1},  # title taken from the prediction
            {"request_id": "r1", "title": "  Headline r1 2 ", "label": 0},  # matched by request + title
            {"title": "An unlinked labelled headline", "label": 1},
        ]
    )
    table = log.feedback_table()
    assert list(table["id"]) == stored
    assert list(table["prediction_id"].astype("object")) == [ids[0], ids[2], pd.NA]
    assert list(table["title"]) == ["Headline r1 0", "Headline r1 2", "An unlinked labelled headline"]
    assert list(table["request_id"].fillna("-")) == ["r1", "r1", "-"]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"title": "x y z", "label": 2}, "label must be 0"),
        ({"title": "x y z", "label": "1"}, "label must be 0"),
        ({"title": "x y z", "label": True}, "label must be 0"),
        ({"title": "   ", "label": 1}, "non-empty string"),
        ({"label": 1}, "give a title"),
        ({"prediction_id": 999, "label": 1}, "not in the prediction log"),
        ({"prediction_id": "1", "label": 1}, "positive integer"),
        ({"request_id": "nope", "title": "x", "label": 1}, "request nope is not in the prediction log"),
        ({"request_id": "r1", "label": 1}, "has 2 headlines; give the title"),
        ({"request_id": "r1", "title": "Not in that request", "label": 1}, "has no headline"),
        ({"prediction_id": 1, "title": "Another title", "label": 1}, "differs from prediction 1"),
    ],
)
def test_bad_feedback_rejects_the_whole_batch(log, row, message):
    log.log_predictions(rows(2))
    with pytest.raises(InputError, match=message):
        log.add_feedback([{"title": "A good row first", "label": 0}, row])
    assert log.feedback_count() == 0


def test_feedback_frame_is_canonical_and_passes_the_feedback_suite(log):
    from fakenews_ml.data.readers import CANONICAL_COLUMNS
    from fakenews_ml.data.validation import validate_news
    from fakenews_ml.monitoring.feedback import feedback_validation_config

    assert list(log.feedback_frame().columns) == CANONICAL_COLUMNS and log.feedback_frame().empty
    log.add_feedback(
        [{"title": "Vaccine causes superpowers", "label": 0}, {"title": "Council approves budget", "label": 0}],
        source="dashboard",
    )
    log.add_feedback([{"title": "Vaccine causes superpowers", "label": 1}])  # corrected later: latest label wins
    frame = log.feedback_frame()
    assert list(frame.columns) == CANONICAL_COLUMNS
    assert dict(zip(frame["title"], frame["label"])) == {"Council approves budget": 0, "Vaccine causes superpowers": 1}
    assert set(frame["source"]) == {"feedback:dashboard", "feedback:api"}
    assert validate_news(frame, feedback_validation_config()).success


def test_a_postgres_url_without_its_driver_is_a_one_line_error(tmp_path, capsys):
    """pg8000 is a real PostgreSQL driver this project does not install: the CLI says so in one line."""
    import importlib.util

    from fakenews_ml.cli import main

    assert importlib.util.find_spec("pg8000") is None, "pg8000 is installed: pick another absent driver"
    labels = tmp_path / "labels.csv"
    labels.write_text("title,label\nSenate passes the budget after a long night,0\n")
    url = "postgresql+pg8000://writer:s3cret@127.0.0.1:5432/log"
    assert main(["feedback", "import", str(labels), "--log-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "driver is not installed" in err and "pg8000" in err and "psycopg" in err
    assert "s3cret" not in err  # the password never reaches a log line
