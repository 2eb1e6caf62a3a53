"""``fakenews serve`` as a real process (stopped by its PID: queued log rows must be flushed on SIGTERM)
and ``fakenews simulate`` against it with feedback, plus the in-process simulator mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fakenews_ml.cli import main
from fakenews_ml.monitoring.prediction_log import PredictionLog


@pytest.fixture
def served(bundles, tmp_path, port_finder):
    """``fakenews serve`` in a subprocess on a free port, with its own prediction log."""
    import httpx

    port, log_url = port_finder(), f"sqlite:///{tmp_path / 'served.sqlite'}"
    out = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the server writes to it until the fixture ends
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fakenews_ml.cli",
            "serve",
            "--model",
            str(bundles["v1"]),
            "--port",
            str(port),
            "--log-url",
            log_url,
            "--max-batch",
            "16",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"fakenews serve did not come up:\n{(tmp_path / 'serve.log').read_text()}")
        time.sleep(0.2)
    try:
        yield {"proc": proc, "url": base, "log_url": log_url, "output": tmp_path / "serve.log"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        out.close()


def test_simulate_with_feedback_against_the_served_api(served, tmp_path, labelled_csv, capsys):
    csv_path = labelled_csv(tmp_path / "traffic.csv", n=30)
    code = main(
        [
            "simulate",
            "--input",
            str(csv_path),
            "--n",
            "40",
            "--api",
            served["url"],
            "--feedback",
            "--concurrency",
            "4",
            "--rate",
            "400",
            "--seed",
            "3",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["sent"] == 40 and summary["ok"] == 40 and summary["errors"] == 0
    assert summary["feedback_stored"] == 40 and summary["feedback_errors"] == []
    assert 0 <= summary["accuracy"] <= 1 and summary["latency_ms"]["p50"] > 0
    assert summary["seconds"] >= 39 / 400  # the rate was honoured
    assert len(summary["model_versions"]) == 1

    # Stop the server by its PID: SIGTERM must flush every queued prediction row before it exits.
    served["proc"].send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: exit status -15 is the normal way out
    assert served["proc"].wait(timeout=60) in (0, -signal.SIGTERM)
    output = served["output"].read_text()
    assert "Application shutdown complete" in output and "http://127.0.0.1:" in output
    with PredictionLog(served["log_url"]) as log:
        frame = log.window("2000-01-01", "2100-01-01")
        assert len(frame) == 40 and set(frame["origin"]) == {"simulator"}
        feedback = log.feedback_table()
        assert len(feedback) == 40 and feedback["prediction_id"].notna().all()
        assert set(feedback["prediction_id"]) == set(frame["id"])  # each label linked to its prediction


def test_simulate_in_process_logs_like_the_api(bundles, tmp_path, labelled_csv, capsys):
    csv_path = labelled_csv(tmp_path / "traffic.csv", n=12, seed=1)
    log_url = f"sqlite:///{tmp_path / 'direct.sqlite'}"
    code = main(
        [
            "simulate",
            "--input",
            str(csv_path),
            "--n",
            "12",
            "--model",
            str(bundles["v2"]),
            "--log-url",
            log_url,
            "--feedback",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] == 12 and summary["feedback_stored"] == 12
    with PredictionLog(log_url) as log:
        assert log.count() == 12 and log.feedback_count() == 12
        assert set(log.recent(12)["origin"]) == {"simulator"}


def test_simulate_errors_are_one_line(tmp_path, labelled_csv, port_finder, capsys):
    csv_path = labelled_csv(tmp_path / "traffic.csv", n=5)
    code = main(
        [
            "simulate",
            "--input",
            str(csv_path),
            "--n",
            "5",
            "--api",
            f"http://127.0.0.1:{port_finder()}",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no API at" in err and "fakenews serve" in err
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("title,outlet\nSome headline,x\n")
    code = main(
        ["simulate", "--input", str(unlabelled), "--n", "5", "--model", str(tmp_path), "--feedback", "--no-progress"]
    )
    assert code == 2 and "--feedback needs labels" in capsys.readouterr().err
    code = main(["simulate", "--input", str(tmp_path / "missing.csv"), "--n", "5", "--no-progress"])
    assert code == 2 and "file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["serve", "--help"], ["--host", "--port", "--model", "127.0.0.1"]),
        (["feedback", "import", "--help"], ["title, label", "nothing is imported"]),
        (["simulate", "--help"], ["--input", "--n", "--rate", "--api", "--model", "--feedback", "--concurrency"]),
    ],
)
def test_help(argv, expected, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for text in expected:
        assert text in out
