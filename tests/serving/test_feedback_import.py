"""``fakenews feedback import CSV``: validated by the raw-data suite, all or nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from fakenews_ml.cli import main
from fakenews_ml.monitoring.prediction_log import PredictionLog


@pytest.fixture
def log_url(tmp_path):
    return f"sqlite:///{tmp_path / 'predictions.sqlite'}"


def run_import(path, log_url, capsys):
    code = main(["feedback", "import", str(path), "--log-url", log_url])
    out, err = capsys.readouterr()
    return code, out, err


def test_good_file_is_imported_with_links(tmp_path, log_url, capsys):
    with PredictionLog(log_url) as log:
        ids = log.log_predictions(
            [
                {
                    "request_id": "req-1",
                    "title": "Mayor opens the new bridge",
                    "prob_fake": 0.2,
                    "label": 0,
                    "model_version": "v1",
                }
            ]
        )
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "title": ["Mayor opens the new bridge", "Aliens endorse candidate", "Senate passes the budget bill"],
            "label": ["real", "fake", "0"],
            "request_id": ["req-1", "", ""],
        }
    ).to_csv(path, index=False)
    code, out, err = run_import(path, log_url, capsys)
    assert code == 0, err
    assert "imported 3 feedback label(s)" in out
    with PredictionLog(log_url) as log:
        table = log.feedback_table()
        assert list(table["label"]) == [0, 1, 0]
        assert table["prediction_id"].iloc[0] == ids[0] and table["prediction_id"].iloc[1:].isna().all()
        assert set(table["source"]) == {"import:labels.csv"}
        assert set(log.feedback_frame()["source"]) == {"feedback:import:labels.csv"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("title,verdict\nSome headline here,1\n", "missing column(s) ['label']"),
        ("title,label\nSome headline here,maybe\n", "unknown label values ['maybe']"),
        ("title,label\nSome headline here,1\n,0\n", "empty title (CSV line(s) 3)"),
        ("title,label,prediction_id\nSome headline here,1,abc\n", "prediction_id 'abc' on CSV line 2"),
        (
            "title,label,prediction_id\nSome headline here,1,\nOther headline here,0,42\n",
            "CSV line 3: prediction 42 is not in the prediction log",
        ),
        ("title,label\n" + "Same old headline,1\n" * 6 + "A different headline,0\n", "duplicate_rate"),
        ("title,label\nab,1\n", "title_length"),
    ],
)
def test_bad_file_is_rejected_whole(tmp_path, log_url, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run_import(path, log_url, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("\n") <= 3  # one line (plus the suite's summary lines), not a traceback
    with PredictionLog(log_url) as log:
        assert log.feedback_count() == 0


def test_non_utf8_and_missing_files(tmp_path, log_url, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("title,label\nCaf\xe9 owner wins award,0\n".encode("latin-1"))
    code, _, err = run_import(path, log_url, capsys)
    assert code == 2 and "not valid UTF-8" in err
    code, _, err = run_import(tmp_path / "missing.csv", log_url, capsys)
    assert code == 2 and "file not found" in err
