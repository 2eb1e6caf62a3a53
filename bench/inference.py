"""Inference throughput on the same 2,000 held-out headlines: our Predictor (fp32, int8, bf16) against a
plain Hugging Face ``pipeline("text-classification")`` with default settings on the same model.

    python bench/inference.py --model ~/.fakenews/models/latest [--n 2000] [--out bench/results/inference.json]

Reports rows/s, speed-up against the pipeline and against our fp32, and accuracy deltas (all in one run).
``ours fp32 (no OOD)`` is the same predictor without the out-of-domain score (the bundle's domain profile
taken away): the ratio against ``ours fp32`` is what the score costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertPreTrainedModel, pipeline
from transformers.modeling_outputs import SequenceClassifierOutput

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import heldout_headlines, machine, markdown_table  # noqa: E402

from fakenews_ml.bundle import load_bundle  # noqa: E402
from fakenews_ml.predict import Predictor, variant_path  # noqa: E402


class PipelineAdapter(BertPreTrainedModel):
    """Our exact trained classifier behind the interface ``pipeline`` expects (logits out)."""

    def __init__(self, classifier):
        config = classifier.encoder.config
        config.id2label, config.label2id = {0: "real", 1: "fake"}, {"real": 0, "fake": 1}
        super().__init__(config)
        self.classifier = classifier

    def forward(self, input_ids=None, attention_mask=None, **_):
        return SequenceClassifierOutput(logits=self.classifier(input_ids, attention_mask))


def timed(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, required=True, help="fp32 bundle with variants (run `fakenews quantize` first)"
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timed passes for our predictor")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--ood-only",
        action="store_true",
        help="only the out-of-domain score's cost: fp32 with and without, interleaved",
    )
    args = parser.parse_args()
    if args.ood_only:
        ood_cost(args)
        return

    rows = heldout_headlines(args.n)
    titles, labels = rows["title"].tolist(), rows["label"].to_numpy()
    base = load_bundle(args.model)
    threshold = base.threshold

    hf = pipeline("text-classification", model=PipelineAdapter(base.model), tokenizer=base.tokenizer, device="cpu")
    hf(titles[:16])  # warm-up
    started = time.perf_counter()
    outputs = hf(titles, truncation=True, max_length=base.model_config.max_length, top_k=None)
    pipeline_seconds = time.perf_counter() - started
    pipeline_probs = np.array([next(o["score"] for o in out if o["label"] == "fake") for out in outputs])

    results = {"pipeline (HF default)": (pipeline_seconds, pipeline_probs)}
    plain = Predictor.from_path(args.model, "fp32")
    plain = Predictor(dataclasses.replace(plain.bundle, domain=None), plain.config)  # no out-of-domain score
    plain.predict_proba(titles[:64])  # warm-up
    results["ours fp32 (no OOD)"] = timed(lambda: plain.predict_proba(titles), args.repeats)
    for variant in ("fp32", "int8", "bf16"):
        predictor = Predictor.from_path(variant_path(args.model, variant), "fp32")
        predictor.predict_proba(titles[:64])  # warm-up
        results[f"ours {variant}"] = timed(lambda p=predictor: p.predict_proba(titles), args.repeats)

    ref_seconds, ref_probs = results["ours fp32"]
    ref_acc = float(((ref_probs >= threshold) == labels).mean())
    table = []
    for name, (seconds, probs) in results.items():
        accuracy = float(((probs >= threshold) == labels).mean())
        table.append(
            {
                "engine": name,
                "headlines/s": round(len(titles) / seconds, 1),
                "x pipeline": round(pipeline_seconds / seconds, 2),
                "x our fp32": round(ref_seconds / seconds, 2),
                "accuracy": round(accuracy, 4),
                "Δ acc vs fp32 (pts)": round(100 * (accuracy - ref_acc), 2),
                "agreement": round(float(((probs >= threshold) == (ref_probs >= threshold)).mean()), 4),
            }
        )
    print(f"{len(titles)} held-out headlines; {machine()}\n")
    print(markdown_table(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "n": len(titles), "rows": table}, indent=2))


def ood_cost(args) -> None:
    """fp32 with and without the out-of-domain score, timed alternately (best of ``repeats`` each), so that a
    busy machine slows both alike; prints the throughput ratio by wall clock and by the process's CPU time
    (the steadier one where other work shares the cores)."""
    titles = heldout_headlines(args.n)["title"].tolist()
    scored = Predictor.from_path(args.model, "fp32")
    plain = Predictor(dataclasses.replace(scored.bundle, domain=None), scored.config)
    best = {"fp32 (no OOD)": float("inf"), "fp32 + OOD score": float("inf")}
    cpu = dict.fromkeys(best, float("inf"))
    for predictor in (plain, scored):
        predictor.predict_proba(titles[:64])  # warm-up
    for _ in range(args.repeats):
        for name, predictor in zip(best, (plain, scored)):
            started, started_cpu = time.perf_counter(), time.process_time()
            predictor.predict(titles)
            best[name] = min(best[name], time.perf_counter() - started)
            cpu[name] = min(cpu[name], time.process_time() - started_cpu)
    rows = [
        {
            "engine": name,
            "headlines/s": round(len(titles) / best[name], 1),
            "headlines per CPU-second": round(len(titles) / cpu[name], 1),
        }
        for name in best
    ]
    ratio = best["fp32 (no OOD)"] / best["fp32 + OOD score"]
    cpu_ratio = cpu["fp32 (no OOD)"] / cpu["fp32 + OOD score"]
    print(f"{len(titles)} held-out headlines, best of {args.repeats} interleaved; {machine()}\n")
    print(markdown_table(rows))
    print(f"\nthroughput with the score / without: {ratio:.3f} (wall clock), {cpu_ratio:.3f} (CPU time)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {"machine": machine(), "n": len(titles), "rows": rows, "ratio": ratio, "cpu_ratio": cpu_ratio}, indent=2
            )
        )


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
