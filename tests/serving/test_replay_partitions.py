"""Replaying history (``fakenews simulate --model ... --day``) gives the replayed day a daily partition: the
recorded start moves back to it, and the user is told to reload the code location."""

from __future__ import annotations

import json
from datetime import date

from fakenews_ml.cli import main
from fakenews_ml.monitoring.partitions_start import PARTITIONS_START_ENV, partitions_start


def test_simulating_a_past_day_moves_the_partitions_start_to_it(bundles, tmp_path, labelled_csv, capsys, monkeypatch):
    monkeypatch.delenv(PARTITIONS_START_ENV)
    before = partitions_start()  # a fresh install: today
    csv_path = labelled_csv(tmp_path / "traffic.csv", n=4, seed=3)
    code = main(["simulate", "--input", str(csv_path), "--n", "4", "--model", str(bundles["v2"]),
                 "--day", "2026-11-01", "--no-progress"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["partitions_start"] == "2026-11-01"
    assert "daily partitions now start on 2026-11-01: reload the code location" in err
    assert before > date(2026, 11, 1) and partitions_start() == date(2026, 11, 1)


def test_a_day_before_an_explicit_start_is_named(bundles, tmp_path, labelled_csv, capsys, monkeypatch):
    monkeypatch.setenv(PARTITIONS_START_ENV, "2026-11-10")
    csv_path = labelled_csv(tmp_path / "traffic.csv", n=2, seed=3)
    code = main(["simulate", "--input", str(csv_path), "--n", "2", "--model", str(bundles["v2"]),
                 "--day", "2026-11-01", "--no-progress"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0
    assert f"2026-11-01 has no daily partition: {PARTITIONS_START_ENV} starts them later" in err
