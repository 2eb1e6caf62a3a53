"""What a hyperparameter search costs and finds on real data: the search stage (the one hyperparameter_search
runs) on the FakeNewsNet titles with the packaged encoder and the default search settings, except the number of
trials. Prints each trial (state, validation ROC-AUC, epochs the pruner saw, seconds) and the totals.

    python bench/hyperparameter_search.py [--trials 3] [--storage sqlite:///...] [--threads 2] [--out search.json]

The study goes to ``--storage`` (default: SQLite in the artifact store); W&B logs offline unless WANDB_MODE says
otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAKENEWSNET, machine, markdown_table  # noqa: E402

from fakenews_ml.config import DataConfig, PipelineConfig, SearchConfig  # noqa: E402
from fakenews_ml.environment import study_storage_url, wandb_settings  # noqa: E402
from fakenews_ml.stages.lifecycle import prepare_training_data  # noqa: E402
from fakenews_ml.stages.search import search_hyperparameters  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--storage", default=None, help="SQLAlchemy URL of the study storage")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per trial (default: all cores)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    splits, tokenized = prepare_training_data(
        PipelineConfig(data=DataConfig(sources=[str(FAKENEWSNET)])), progress=False
    )
    config = SearchConfig(n_trials=args.trials)
    compute = {"accelerator": "auto", "precision": "auto", "num_threads": args.threads}
    started = time.perf_counter()
    found = search_hyperparameters(
        tokenized, splits, config, args.storage or study_storage_url(), compute=compute, wandb=wandb_settings(),
        progress=print,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    rows = [
        {
            "trial": t.number,
            "state": t.state.lower(),
            "val_roc_auc": round(t.value, 4) if t.value is not None else "",
            "epochs reported": t.epochs_reported,
            "last reported": round(t.last_reported, 4) if t.last_reported is not None else "",
            "steps": t.steps or "",
            "seconds": t.seconds,
            "batch size": t.params["batch_size"],
            "lr": f"{t.params['learning_rate']:.2e}",
        }
        for t in found.trials
    ]
    result = {
        "machine": machine(),
        "study": found.study,
        "new_trials": found.new_trials,
        "sample_rows": {"train": found.train_rows, "val": found.val_rows},
        "seconds": round(seconds, 1),
        "best_trial": found.best_trial,
        "best_value": round(found.best_value, 4),
        "best_params": found.best_params,
        "trials": rows,
    }
    print(markdown_table(rows))
    print(json.dumps({k: v for k, v in result.items() if k != "trials"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
