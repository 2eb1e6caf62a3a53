"""The out-of-domain flag on the COVID scenario: the share of headlines flagged, per data set, by one bundle.

    python bench/out_of_domain.py --model BUNDLE [--n 1000] [--out bench/results/out_of_domain.json]

In domain: the bundle's own frozen test rows (never trained on). Then unlabelled news of the same era and of a
later one, and Constraint@AAAI-2021 COVID-19 claims: what the issue's "Drinking bleach cures COVID-19" stands for.
With a threshold at the 99th percentile of the val split, about 1% of in-domain headlines should be flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS, machine, markdown_table  # noqa: E402

from fakenews_ml.bundle import HELDOUT_TABLE  # noqa: E402
from fakenews_ml.predict import Predictor, predict_all  # noqa: E402

EXAMPLES = ["Drinking bleach cures COVID-19", "Senate passes the budget after a late-night vote"]


def titles(path: Path, n: int) -> list[str]:
    frame = pd.read_csv(path, usecols=["title"]).dropna()
    frame = frame[frame["title"].str.strip() != ""]
    return frame.sample(min(n, len(frame)), random_state=0)["title"].str.slice(0, 300).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a bundle trained with a domain profile")
    parser.add_argument("--n", type=int, default=1000, help="headlines per data set")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    predictor = Predictor.from_path(args.model, "fp32")
    if predictor.domain_threshold is None:
        sys.exit(f"{args.model} has no out-of-domain profile: retrain it")
    sets = {
        "in domain: the bundle's test split": titles(args.model / f"{HELDOUT_TABLE}.csv", args.n),
        "news 2016-2017 (same era)": titles(DATASETS / "traffic_news_2016_2017.csv", args.n),
        "news 2021-2022 (later era)": titles(DATASETS / "traffic_news_2021_2022.csv", args.n),
        "COVID-19 claims (Constraint)": titles(DATASETS / "constraint_covid19.csv", args.n),
    }
    table = []
    for name, rows in sets.items():
        result = predict_all(predictor, rows)
        table.append(
            {
                "headlines": name,
                "n": len(rows),
                "flagged out of domain": f"{result['out_of_domain'].mean():.1%}",
                "median ood_score": round(float(result["ood_score"].median()), 2),
            }
        )
    examples = predictor.predict(EXAMPLES)
    print(f"threshold {predictor.domain_threshold:.2f} (99th percentile of val); {machine()}\n")
    print(markdown_table(table))
    for title, (_, row) in zip(EXAMPLES, examples.iterrows()):
        verdict = "fake" if row.label else "real"
        print(f"\n{title!r}: {verdict}, ood_score {row.ood_score:.2f}, out_of_domain {bool(row.out_of_domain)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"threshold": predictor.domain_threshold, "rows": table, "machine": machine()}, indent=2)
        )


if __name__ == "__main__":
    main()
