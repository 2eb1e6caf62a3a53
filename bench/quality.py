"""Held-out quality of a trained bundle against the issue's strong baseline, on the same split: word 1-2-gram
+ char 2-5-gram TF-IDF with logistic regression, trained on the same train split.

    python bench/quality.py --model $FAKENEWS_HOME/production/champion [--out bench/results/quality.json]

The bundle's own frozen test split (heldout_test.csv) is the yardstick; the train split is rebuilt with the
same deterministic split code from the same source file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, train_split  # noqa: E402

from fakenews_ml.bundle import read_json  # noqa: E402
from fakenews_ml.data.readers import read_news_file  # noqa: E402
from fakenews_ml.evaluation import evaluate_predictor  # noqa: E402
from fakenews_ml.metrics import compute_metrics, tune_threshold  # noqa: E402
from fakenews_ml.predict import Predictor  # noqa: E402


def tfidf_baseline(train, test, val) -> dict:
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)

    def features(frame, fit=False):
        return hstack(
            [
                (word.fit_transform if fit else word.transform)(frame["title"]),
                (char.fit_transform if fit else char.transform)(frame["title"]),
            ]
        ).tocsr()

    model = LogisticRegression(C=4.0, max_iter=3000, solver="liblinear").fit(features(train, fit=True), train["label"])
    threshold = tune_threshold(val["label"].to_numpy(), model.predict_proba(features(val))[:, 1])
    return compute_metrics(test["label"].to_numpy(), model.predict_proba(features(test))[:, 1], threshold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    model = args.model.resolve()
    test = read_news_file(model / "heldout_test.csv")
    train = train_split()
    rng = np.random.default_rng(0)
    mask = rng.random(len(train)) < 0.1
    baseline = tfidf_baseline(train[~mask], test, train[mask])
    ours = evaluate_predictor(Predictor.from_path(model, "auto"), test)
    components = read_json(model, "metrics").get("components", {}).get("test", {})
    rows = [
        {
            "model": "TF-IDF word 1-2 + char 2-5, logistic regression",
            "macro-F1": round(baseline["macro_f1"], 4),
            "ROC-AUC": round(baseline["roc_auc"], 4),
            "accuracy": round(baseline["accuracy"], 4),
        },
        {
            "model": f"ours ({ours['variant']}, served)",
            "macro-F1": round(ours["macro_f1"], 4),
            "ROC-AUC": round(ours["roc_auc"], 4),
            "accuracy": round(ours["accuracy"], 4),
        },
    ]
    print(
        f"test split: {len(test)} headlines (the bundle's heldout_test.csv); transformer alone ROC-AUC "
        f"{components.get('transformer_roc_auc', float('nan')):.4f}, lexical half alone {components.get('lexical_roc_auc', float('nan')):.4f}\n"
    )
    print(markdown_table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "components": components}, indent=2))


if __name__ == "__main__":
    main()
