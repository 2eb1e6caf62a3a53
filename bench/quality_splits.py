"""Quality across several random splits: how much of a single test split's score is the split's luck.

    python bench/quality_splits.py --seeds 1,2,3 [--epochs N] [--out bench/results/quality_splits.json]

For each data seed: the default training config on the full fakenewsnet_titles.csv, split with that seed,
scored (fp32 blend, threshold tuned on val) on its own test split, next to the issue's TF-IDF baseline
trained on the same train split (threshold tuned on the same val split). One default training run per seed
(``--epochs`` overrides the one setting, to test a change of it across splits).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAKENEWSNET, machine, markdown_table, split_frames  # noqa: E402
from quality import tfidf_baseline  # noqa: E402

from fakenews_ml.config import DataConfig, PipelineConfig  # noqa: E402
from fakenews_ml.stages.lifecycle import train_from_sources  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, help="training epochs instead of the default config's")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        config = PipelineConfig(data=DataConfig(sources=[str(FAKENEWSNET)], seed=seed))
        config.train.progress_bar = False
        if args.epochs:
            config.train.epochs = args.epochs
        frames = split_frames(FAKENEWSNET, seed)
        baseline = tfidf_baseline(frames["train"], frames["test"], frames["val"])
        started = time.perf_counter()
        result = train_from_sources(config)  # the artifact store's cache: a split trained before is reused
        rows.append(
            {
                "split seed": seed,
                "test rows": len(frames["test"]),
                "TF-IDF macro-F1": round(baseline["macro_f1"], 4),
                "TF-IDF ROC-AUC": round(baseline["roc_auc"], 4),
                "ours macro-F1": round(result.metrics.test.macro_f1, 4),
                "ours ROC-AUC": round(result.metrics.test.roc_auc, 4),
                "train min": round((time.perf_counter() - started) / 60, 1),
            }
        )
        print(markdown_table(rows[-1:]), flush=True)
    mean = {key: round(float(np.mean([row[key] for row in rows])), 4) for key in rows[0] if "F1" in key or "AUC" in key}
    rows.append({"split seed": "mean", "test rows": "", **mean, "train min": ""})
    print(f"\n{machine()}\n\n{markdown_table(rows)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
