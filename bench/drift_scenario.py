"""The production loop end to end, on real data, against a FAKENEWS_HOME whose champion was trained on
FakeNewsNet by the asset graph (`dagster asset materialize -m fakenews_assets.definitions --select '*reference_profile'`):

1. API latency (bench/api_latency.py): `fakenews serve` on 127.0.0.1, 8 concurrent wrk clients sending one
   headline per request; then every answered request must be in the prediction log (no lost rows).
2. Four days of replayed traffic (`simulate --day`): held-out FakeNewsNet titles, two unlabelled news
   traffic sets, COVID posts with their labels as feedback.
3. The daily `drift_report` of each day, materialized by Dagster, with its drift check.
4. The `drift_sensor` evaluated on the instance: it must request the `retrain` job.
5. The retrain run (feedback merged into the training data), through the champion/challenger gate.
6. Old vs new champion: macro-F1 on COVID posts never seen (Constraint's own val split, never streamed)
   and on the FakeNewsNet test split.

    DAGSTER_HOME=... FAKENEWS_HOME=... FAKENEWS_SOURCES=.../fakenewsnet_titles.csv \\
        python bench/drift_scenario.py --out bench/results/drift_scenario.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_latency import api_latency  # noqa: E402
from common import DATASETS, markdown_table  # noqa: E402

from fakenews_ml.data.readers import read_news_file  # noqa: E402
from fakenews_ml.evaluation import evaluate_predictor  # noqa: E402
from fakenews_ml.monitoring.drift_store import read_summary  # noqa: E402
from fakenews_ml.predict import Predictor  # noqa: E402
from fakenews_ml.registry import champion_path  # noqa: E402
from fakenews_ml.serving.simulator import DirectTarget, load_headlines, simulate  # noqa: E402
from fakenews_ml.tables import write_csv_atomically  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def replay(day: date, path: Path, n: int, feedback: bool, seed: int) -> dict:
    target = DirectTarget(champion_path(), day=day)
    try:
        return simulate(load_headlines(path), n, target, feedback=feedback, seed=seed)
    finally:
        target.close()


def dagster(*args: str) -> None:
    subprocess.run(
        ["dagster", *args, "-m", "fakenews_assets.definitions"],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def evaluate(bundle: Path, frames: dict[str, pd.DataFrame]) -> dict:
    predictor = Predictor.from_path(bundle, "auto")
    return {name: round(evaluate_predictor(predictor, frame)["macro_f1"], 4) for name, frame in frames.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--latency-seconds", type=float, default=30, help="length of the API load test (bench/api_latency.py)"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--window", type=int, default=500, help="headlines per replayed day")
    parser.add_argument("--covid-feedback", type=int, default=3000, help="COVID posts streamed with their labels")
    parser.add_argument("--first-day", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(os.environ["FAKENEWS_HOME"]) / "scenario"
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {}

    champion = champion_path()
    if champion is None:
        sys.exit(
            "no champion: run `dagster asset materialize -m fakenews_assets.definitions --select '*reference_profile'` first"
        )
    fnn_test = read_news_file(champion / "heldout_test.csv")
    covid = pd.read_csv(DATASETS / "constraint_covid19.csv", dtype={"title": str})
    covid_stream, covid_unseen = covid[covid["split"] == "train"], covid[covid["split"] == "val"]
    write_csv_atomically(covid_stream[["title", "label"]], work / "covid_stream.csv")
    write_csv_atomically(fnn_test[["title", "label"]], work / "fnn_heldout.csv")
    eval_frames = {
        "covid_unseen": covid_unseen[["title", "label"]].reset_index(drop=True),
        "fakenewsnet_test": fnn_test,
    }

    if not args.skip_latency:
        results["latency"] = api_latency(champion, args.clients, args.latency_seconds)[0]
        print("latency", results["latency"], flush=True)

    days = {
        "fakenewsnet held-out": (work / "fnn_heldout.csv", args.window, False),
        "news 2016-2017": (DATASETS / "traffic_news_2016_2017.csv", args.window, False),
        "news 2021-2022": (DATASETS / "traffic_news_2021_2022.csv", args.window, False),
        "COVID posts (+ labels)": (work / "covid_stream.csv", args.covid_feedback, True),
    }
    results["days"] = []
    for i, (name, (path, n, feedback)) in enumerate(days.items()):
        day = args.first_day + timedelta(days=i)
        streamed = replay(day, path, n, feedback, seed=i)
        started = time.perf_counter()
        dagster("asset", "materialize", "--select", "daily_predictions,drift_report", "--partition", day.isoformat())
        summary = read_summary(day.isoformat())
        row = {
            "day": day.isoformat(),
            "traffic": name,
            "rows": summary["n_current"],
            "drifted": summary["drifted"],
            "drift_share": round(summary["drift_share"], 2),
            "embedding_auc": round(summary["embedding_drift"]["score"], 3),
            "report_s": round(time.perf_counter() - started, 1),
            "feedback": streamed.get("feedback_stored", 0),
        }
        results["days"].append(row)
        print(row, flush=True)

    from dagster import DagsterInstance, build_sensor_context

    from fakenews_assets.definitions import defs

    with DagsterInstance.get() as instance:
        sensor = defs.get_sensor_def("drift_sensor")
        evaluation = sensor(build_sensor_context(instance=instance, definitions=defs))
        requests_made = [r.run_key for r in (evaluation.run_requests or [])]
        results["sensor"] = {"run_keys": requests_made, "cursor": evaluation.cursor}
        print("sensor", results["sensor"], flush=True)
        if not requests_made:
            sys.exit("the drift sensor requested no retrain")
        started = time.perf_counter()
        run = defs.get_job_def("retrain").execute_in_process(
            instance=instance, tags=evaluation.run_requests[0].tags, raise_on_error=False
        )
        results["retrain"] = {"success": run.success, "minutes": round((time.perf_counter() - started) / 60, 1)}

    new_champion = champion_path()
    results["promoted"] = new_champion != champion
    results["macro_f1"] = {
        "old champion": evaluate(champion, eval_frames),
        "new champion": evaluate(new_champion, eval_frames),
    }
    old, new = results["macro_f1"]["old champion"], results["macro_f1"]["new champion"]
    results["gain_points"] = {k: round(100 * (new[k] - old[k]), 1) for k in old}
    print(markdown_table(results["days"]))
    print(json.dumps({k: results[k] for k in ("sensor", "retrain", "promoted", "macro_f1", "gain_points")}, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
