"""live_quality materialized in-process on a real SQLite prediction log with feedback labels: the numbers
against scikit-learn's on the same rows, per model version, and its check below and above its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from fakenews_ml.monitoring.prediction_log import PredictionLog

from .conftest import materialize

DAY, NEXT_DAY = "2024-05-02", "2024-05-03"
LIVE = dg.AssetSelection.assets("live_quality") | dg.AssetSelection.checks_for_assets("live_quality")


def log_day(log: PredictionLog, rng: np.random.Generator) -> dict:
    """60 predictions on DAY by two model versions (and 5 on the next day); 40 of DAY's get a label, one of
    them twice (the person corrected it: the second label counts)."""
    start = datetime.fromisoformat(DAY).replace(hour=6, tzinfo=UTC)
    rows = [
        {
            "request_id": f"r{i}",
            "title": f"Headline number {i} about the city budget",
            "prob_fake": float(p),
            "label": int(p >= 0.5),
            "model_version": "v1" if i < 30 else "v2",
            "created_at": start + timedelta(minutes=7 * i),
        }
        for i, p in enumerate(rng.random(60))
    ]
    rows += [{**rows[0], "request_id": f"n{i}", "created_at": start + timedelta(days=1, hours=i)} for i in range(5)]
    ids = log.log_predictions(rows)
    labelled = rng.choice(60, size=40, replace=False)
    truth = {int(i): int(rng.random() < 0.5) for i in labelled}
    log.add_feedback([{"prediction_id": ids[i], "label": 1 - truth[i]} for i in labelled[:1]], source="api")
    log.add_feedback([{"prediction_id": ids[i], "label": truth[i]} for i in labelled], source="dashboard")
    log.add_feedback([{"prediction_id": ids[60], "label": 1}], source="api")  # the next day: not DAY's
    return {"rows": rows[:60], "truth": truth}


def expected(rows: list[dict], truth: dict[int, int], version: str | None = None) -> dict:
    keep = [i for i in sorted(truth) if version is None or rows[i]["model_version"] == version]
    y, p = [truth[i] for i in keep], [rows[i]["label"] for i in keep]
    return {
        "rows": len(keep),
        "accuracy": accuracy_score(y, p),
        "macro_f1": f1_score(y, p, average="macro", labels=[0, 1], zero_division=0),
        "confusion": confusion_matrix(y, p, labels=[0, 1]).tolist(),
    }


@pytest.mark.parametrize("bound", [0.0, 0.99])
def test_live_quality_scores_the_labelled_traffic_of_the_day_per_model_version(tmp_path, bound):
    home = tmp_path / "home"
    with PredictionLog(f"sqlite:///{home / 'logs' / 'predictions.sqlite'}") as log:
        day = log_day(log, np.random.default_rng(3))
    config = {"ops": {"live_quality": {"config": {"min_labelled_rows": 30, "min_macro_f1": bound}}}}
    run = materialize(home, tmp_path / "unused.csv", config, selection=LIVE, partition_key=DAY)
    assert run.result.success, run.failed_steps

    overall = expected(day["rows"], day["truth"])
    meta = run.metadata["live_quality"]
    assert meta["labelled_rows"] == overall["rows"] == 40 and meta["predictions"] == 60
    assert meta["accuracy"] == pytest.approx(overall["accuracy"], abs=1e-4)
    assert meta["macro_f1"] == pytest.approx(overall["macro_f1"], abs=1e-4)
    (tn, fp), (fn, tp) = overall["confusion"]
    assert f"| **real** | {tn} | {fp} |" in meta["confusion"] and f"| **fake** | {fn} | {tp} |" in meta["confusion"]
    per_version = {r.data["model_version"]: r.data for r in meta["by_model_version"].records}
    assert set(per_version) == {"v1", "v2"}
    for version, row in per_version.items():
        want = expected(day["rows"], day["truth"], version)
        assert row["rows"] == want["rows"] and row["macro_f1"] == pytest.approx(want["macro_f1"], abs=1e-4)
        assert [[row["tn"], row["fp"]], [row["fn"], row["tp"]]] == want["confusion"]

    # the check: a WARN below the bound, a pass above it, the numbers in its description
    passed = overall["macro_f1"] >= bound
    assert run.checks == {"live_quality_within_bounds": passed}
    severity, description = run.check_descriptions["live_quality_within_bounds"]
    assert severity == "WARN" and f"live macro-F1 {overall['macro_f1']:.3f}" in description


def test_a_day_with_few_labels_is_not_judged(tmp_path):
    home = tmp_path / "home"
    with PredictionLog(f"sqlite:///{home / 'logs' / 'predictions.sqlite'}") as log:
        log_day(log, np.random.default_rng(4))
    config = {"ops": {"live_quality": {"config": {"min_labelled_rows": 30, "min_macro_f1": 0.99}}}}
    run = materialize(home, tmp_path / "unused.csv", config, selection=LIVE, partition_key=NEXT_DAY)
    assert run.result.success
    assert run.metadata["live_quality"]["labelled_rows"] == 1 and run.metadata["live_quality"]["judged"] is False
    assert run.checks == {"live_quality_within_bounds": True}
    assert run.check_descriptions["live_quality_within_bounds"][1].startswith("not judged: 1 labelled prediction(s)")
