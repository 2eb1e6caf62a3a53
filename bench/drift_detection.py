"""Calibration of the drift check on real data: false alarms on same-distribution traffic, detections on
shifted traffic, and the time of one 5,000 vs 5,000 report.

    python bench/drift_detection.py --bundle ~/.fakenews/production/champion --out bench/results/drift.json

* reference: a seeded sample of ``--reference-rows`` FakeNewsNet titles from the training split (or from the
  validation split with ``--reference-split val``), split exactly as training splits them;
* ``fakenewsnet_heldout``: ``--windows`` random windows of ``--window-size`` FakeNewsNet titles that are
  neither in the reference nor in the training split: no drift expected (target: at most 1 alarm in 20);
* ``constraint_covid19``: windows of COVID posts: drift expected (target: at least 19 detections in 20);
* ``traffic_news_2016_2017`` / ``traffic_news_2021_2022``: unlabelled headlines of other outlets and
  eras: reported as measured;
* timing: one report over ``--timing-rows`` reference vs as many window headlines, with the window's
  embeddings computed inside (as the drift asset does; its prob_fake/label come from the log), both parts
  reported.

Model outputs per title are computed once per dataset (all windows' rows together) and, with
``--cache-dir``, kept between runs (keyed by model version). Every window is a full ``compute_drift`` call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS, machine, markdown_table  # noqa: E402

from fakenews_ml.config import DataConfig, DriftConfig  # noqa: E402
from fakenews_ml.data.readers import read_sources  # noqa: E402
from fakenews_ml.data.splits import fingerprint, split_news  # noqa: E402
from fakenews_ml.monitoring.drift import compute_drift  # noqa: E402
from fakenews_ml.monitoring.reference import (  # noqa: E402
    load_profile,
    save_profile,
    traffic_features,
    window_features,
)
from fakenews_ml.predict import Predictor  # noqa: E402

EXPECTED = {"fakenewsnet_heldout": "no drift", "constraint_covid19": "drift"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=None, help="model bundle (default: the production champion)")
    parser.add_argument("--variant", default="fp32", help="bundle variant to embed with (fp32, int8, bf16, auto)")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--windows", type=int, default=20, help="0 = timing only")
    parser.add_argument("--window-size", type=int, default=500)
    parser.add_argument("--reference-rows", type=int, default=5000)
    parser.add_argument("--reference-split", choices=["train", "val"], default="train")
    parser.add_argument("--timing-rows", type=int, default=5000, help="0 skips the timing run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config", type=json.loads, default={}, help="DriftConfig overrides as JSON, e.g. '{\"drift_share\": 0.6}'"
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep per-title model outputs here between runs")
    parser.add_argument("--reports-dir", type=Path, default=None, help="keep every window's HTML/JSON report here")
    parser.add_argument("--out", type=Path, default=Path("bench/results/drift_detection.json"))
    args = parser.parse_args(argv)
    if args.bundle is None:
        from fakenews_ml.registry import champion_path

        args.bundle = champion_path()
        if args.bundle is None:
            parser.error("no --bundle given and no production champion under FAKENEWS_HOME")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def unlabelled_titles(path: Path) -> pd.Series:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    titles = raw["title"].str.strip()
    return titles[titles != ""].reset_index(drop=True)


def cached_features(name: str, titles: list[str], predictor: Predictor, cache_dir: Path | None) -> pd.DataFrame:
    """Features of ``titles`` (in order), from the cache when this model already computed them."""
    folder = cache_dir / predictor.version / name if cache_dir else None
    if folder is not None and (folder / "profile.json").exists():
        cached = load_profile(folder)
        if cached["title"].tolist() == [t.strip() for t in titles]:
            return cached
    started = time.perf_counter()
    features = traffic_features(titles, predictor)
    log(f"{name}: scored and embedded {len(titles)} titles in {time.perf_counter() - started:.1f} s")
    if folder is not None:
        save_profile(features, folder)
    return features


def draw_windows(n_pool: int, n_windows: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    if n_pool < size:
        raise SystemExit(f"a pool of {n_pool} rows cannot give windows of {size}")
    return [np.sort(rng.choice(n_pool, size=size, replace=False)) for _ in range(n_windows)]


def summarise(name: str, runs: list[dict]) -> dict:
    flags = [r["drifted"] for r in runs]
    features = runs[0]["features"].keys()
    return {
        "dataset": name,
        "expected": EXPECTED.get(name, "report"),
        "windows": len(runs),
        "drift_alarms": int(sum(flags)),
        "median_drift_share": round(float(np.median([r["drift_share"] for r in runs])), 3),
        "median_embedding_auc": round(float(np.median([r["embedding_drift"]["score"] for r in runs])), 3),
        "max_embedding_auc": round(float(np.max([r["embedding_drift"]["score"] for r in runs])), 3),
        "feature_drift_counts": {f: int(sum(r["features"][f]["drifted"] for r in runs)) for f in features},
        "median_feature_scores": {
            f: round(float(np.median([r["features"][f]["score"] for r in runs])), 4) for f in features
        },
        "embedding_alarms": int(sum(r["embedding_drift"]["drifted"] for r in runs)),
        "share_alarms": int(sum(r["drift_share"] >= r["drift_share_threshold"] for r in runs)),
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    config = DriftConfig(**args.config)
    rng = np.random.default_rng(args.seed)
    predictor = Predictor.from_path(args.bundle, args.variant)
    log(f"model {predictor.version} ({args.variant}) on {machine()}")

    source = args.datasets / "fakenewsnet_titles.csv"
    frame, _ = read_sources([str(source)], progress=False)
    splits = split_news(frame, DataConfig(sources=[str(source)])).frames
    trained = predictor.bundle.lineage.get("data", {}).get("splits", {}).get("train", {}).get("fingerprint")
    if trained and trained != fingerprint(splits["train"]):
        log("warning: this bundle was trained on other splits than the default FakeNewsNet split")
    reference_pool = splits[args.reference_split]
    # titles neither in the reference nor seen in training: val + test (train reference) or test (val reference)
    heldout = pd.concat([splits[name] for name in ("val", "test") if name != args.reference_split], ignore_index=True)

    started = time.perf_counter()
    reference_titles = reference_pool["title"].sample(
        n=min(args.reference_rows, len(reference_pool)), random_state=args.seed
    )
    reference = cached_features(
        f"reference_{args.reference_split}_{args.reference_rows}_{args.seed}",
        reference_titles.tolist(),
        predictor,
        args.cache_dir,
    )
    reference.attrs.setdefault("model_version", predictor.version)
    reference_seconds = time.perf_counter() - started

    pools = {
        "fakenewsnet_heldout": heldout["title"].reset_index(drop=True),
        "constraint_covid19": unlabelled_titles(args.datasets / "constraint_covid19.csv"),
        "traffic_news_2016_2017": unlabelled_titles(args.datasets / "traffic_news_2016_2017.csv"),
        "traffic_news_2021_2022": unlabelled_titles(args.datasets / "traffic_news_2021_2022.csv"),
    }
    # ~4 MB of HTML per report (Evidently inlines its JavaScript): kept only when asked for
    reports_root = args.reports_dir or Path(tempfile.mkdtemp(prefix="drift_bench_"))
    summaries, details = [], {}
    for name, pool in pools.items() if args.windows else ():
        windows = draw_windows(len(pool), args.windows, args.window_size, rng)
        rows = np.unique(np.concatenate(windows))
        key = (
            f"{name}_{args.reference_split}ref" if name == "fakenewsnet_heldout" else name
        )  # its pool depends on the reference split
        features = cached_features(
            f"{key}_{args.seed}_{args.windows}x{args.window_size}", pool.iloc[rows].tolist(), predictor, args.cache_dir
        )
        position = {row: i for i, row in enumerate(rows)}
        runs = []
        for i, window in enumerate(windows):
            current = features.iloc[[position[r] for r in window]].reset_index(drop=True)
            current.attrs["model_version"] = predictor.version
            t0 = time.perf_counter()
            result = compute_drift(reference, current, config, reports_root / name / f"{i:02d}")
            runs.append({**result.to_metadata(), "wall_seconds": round(time.perf_counter() - t0, 2)})
        summaries.append(summarise(name, runs))
        details[name] = runs
        s = summaries[-1]
        log(
            f"{name}: {s['drift_alarms']}/{s['windows']} drift alarms (expected: {s['expected']}); "
            f"median drift share {s['median_drift_share']}, median embedding AUC {s['median_embedding_auc']}"
        )

    timing = None
    if args.timing_rows:
        timing = time_one_report(
            args, config, reference, reference_pool, pools["traffic_news_2021_2022"], predictor, reports_root
        )

    table = summaries and markdown_table(
        [
            {
                "dataset": s["dataset"],
                "expected": s["expected"],
                "windows": s["windows"],
                "drift alarms": s["drift_alarms"],
                "median drift share": s["median_drift_share"],
                "median / max embedding AUC": f"{s['median_embedding_auc']} / {s['max_embedding_auc']}",
                "per-feature drift counts": ", ".join(f"{k} {v}" for k, v in s["feature_drift_counts"].items()),
            }
            for s in summaries
        ]
    )
    targets = {}
    if summaries:  # the targets, scaled to the number of windows (1 in 20)
        allowed = max(1, args.windows // 20)
        heldout_alarms, covid_hits = summaries[0]["drift_alarms"], summaries[1]["drift_alarms"]
        targets = {
            "heldout_false_alarms": heldout_alarms,
            "heldout_target": f"<= {allowed}",
            "heldout_ok": heldout_alarms <= allowed,
            "covid_detections": covid_hits,
            "covid_target": f">= {args.windows - allowed}",
            "covid_ok": covid_hits >= args.windows - allowed,
        }
        print()
        print(table)
    if timing:
        print()
        print(markdown_table([timing["table_row"]]))
    print()
    print(f"targets: {json.dumps(targets)}")
    results = {
        "machine": machine(),
        "load_average_at_end": os.getloadavg(),
        "bundle": str(args.bundle),
        "variant": args.variant,
        "model_version": predictor.version,
        "reference": {
            "split": args.reference_split,
            "rows": len(reference),
            "seconds_to_build": round(reference_seconds, 1),
        },
        "window_size": args.window_size,
        "windows": args.windows,
        "seed": args.seed,
        "config": config.model_dump(),
        "summary": summaries,
        "targets": targets,
        "timing": timing,
        "windows_detail": details,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }
    if args.reports_dir is None:
        shutil.rmtree(reports_root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    log(f"results written to {args.out}")
    return results


def time_one_report(args, config, reference, reference_pool, traffic: pd.Series, predictor, reports_root: Path) -> dict:
    """One report over ``timing_rows`` vs ``timing_rows`` headlines, timed as the drift asset runs it:
    logged rows (title, prob_fake, label) -> embed the window -> compute_drift."""
    n = args.timing_rows
    if len(reference) < n:  # the calibration reference is smaller: build one of the asked size
        titles = reference_pool["title"].sample(n=min(n, len(reference_pool)), random_state=args.seed + 1)
        reference = cached_features(
            f"timing_reference_{args.reference_split}_{n}_{args.seed}", titles.tolist(), predictor, args.cache_dir
        )
        reference.attrs.setdefault("model_version", predictor.version)
    titles = traffic.sample(n=min(n, len(traffic)), random_state=args.seed).tolist()
    t0 = time.perf_counter()
    scored = predictor.predict(titles)  # stands in for the prediction log (served earlier, not part of the report)
    predict_seconds = time.perf_counter() - t0
    logged = pd.DataFrame({"title": titles, "prob_fake": scored["prob_fake"], "label": scored["label"]})
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    current = window_features(logged, predictor)
    embed_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    timing_config = config.model_copy(
        update={
            "max_reference_rows": max(config.max_reference_rows, n),
            "max_current_rows": max(config.max_current_rows, n),
        }
    )
    result = compute_drift(reference, current, timing_config, reports_root / "timing")
    report_seconds = time.perf_counter() - t1
    total = embed_seconds + report_seconds
    log(
        f"timing {len(reference)} vs {len(current)}: embed window {embed_seconds:.1f} s + report {report_seconds:.1f} s = {total:.1f} s "
        f"(load average {load_before:.1f} on {os.cpu_count()} cores)"
    )
    return {
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "embed_window_seconds": round(embed_seconds, 2),
        "report_seconds": round(report_seconds, 2),
        "total_seconds": round(total, 2),
        "within_60s": total <= 60.0,
        "predict_seconds_not_counted": round(predict_seconds, 2),
        "load_average_before": round(load_before, 2),
        "drifted": result.drifted,
        "table_row": {
            "report": f"{result.n_reference} vs {result.n_current}",
            "embed window (s)": round(embed_seconds, 1),
            "Evidently report + embedding test (s)": round(report_seconds, 1),
            "total (s)": round(total, 1),
            "load average": round(load_before, 1),
        },
    }


if __name__ == "__main__":
    main()
