"""The lexical half's scoring time: sklearn's char n-gram vectorizer against the word-cached one, in one run.

    python bench/lexical.py [--n 2000] [--repeats 5]

A lexical model is fitted on the train split (as training fits it), then ``LexicalModel.decision`` scores the
same held-out headlines with each char block: sklearn's own ``HashingVectorizer`` (``sklearn``), the cached
one starting empty (``cached, cold``: every word is new) and once it has seen them (``cached, warm``: a
serving API's steady state). Both give the same scores; the run checks it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import heldout_headlines, machine, markdown_table, train_split  # noqa: E402

from fakenews_ml.model import lexical  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    train = train_split()
    model = lexical.LexicalModel.fit(train["title"].tolist(), train["label"].to_numpy())
    titles = heldout_headlines(args.n)["title"].tolist()
    blocks = list(lexical._vectorizers(model.scheme))
    cached = blocks[1]

    def score(char_block) -> tuple[float, np.ndarray]:
        blocks[1] = char_block
        lexical._vectorizers.cache_clear()
        original = lexical._vectorizers
        lexical._vectorizers = lambda scheme=model.scheme: tuple(blocks)
        try:
            started = time.perf_counter()
            scores = model.decision(titles)
            return time.perf_counter() - started, scores
        finally:
            lexical._vectorizers = original

    best = {"sklearn": float("inf"), "cached, cold": float("inf"), "cached, warm": float("inf")}
    reference = None
    for _ in range(args.repeats):
        seconds, reference = score(cached.vectorizer)
        best["sklearn"] = min(best["sklearn"], seconds)
        cold = lexical.WordCachedCharNgrams(cached.vectorizer)
        seconds, scores = score(cold)
        best["cached, cold"] = min(best["cached, cold"], seconds)
        np.testing.assert_allclose(scores, reference, rtol=1e-6)
        seconds, scores = score(cold)
        best["cached, warm"] = min(best["cached, warm"], seconds)
        np.testing.assert_allclose(scores, reference, rtol=1e-6)
    rows = [
        {"char block": name, "headlines/s": round(len(titles) / s), "x sklearn": round(best["sklearn"] / s, 2)}
        for name, s in best.items()
    ]
    print(f"{len(titles)} held-out headlines, best of {args.repeats}; {machine()}\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
