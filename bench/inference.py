"""Inference throughput on the same 2,000 held-out headlines: our Predictor (fp32, int8, bf16) against a
plain Hugging Face ``pipeline("text-classification")`` with default settings on the same model.

    python bench/inference.py --model ~/.fakenews/models/latest [--n 2000] [--out bench/results/inference.json]
    python bench/inference.py --model TEACHER --student STUDENT   # a distilled student beside its teacher

Reports rows/s, speed-up against the pipeline and against our fp32, and accuracy deltas (all in one run).
With ``--student``, the student bundle's variants are timed in the same run (deltas still against the
teacher's fp32): on a shared machine only such ratios are fair.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
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
    parser.add_argument("--student", type=Path, help="a distilled student of --model, timed in the same run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

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
    models = [("ours", args.model)] + ([("student", args.student)] if args.student else [])
    for name, model in models:
        for variant in ("fp32", "int8", "bf16"):
            if variant != "fp32" and not (model / "variants" / variant).is_dir():
                continue  # a student is quantized to int8 only
            predictor = Predictor.from_path(variant_path(model, variant), "fp32")
            predictor.predict_proba(titles[:64])  # warm-up
            results[f"{name} {variant}"] = timed(lambda p=predictor: p.predict_proba(titles), args.repeats)

    ref_seconds, ref_probs = results["ours fp32"]
    ref_acc = float(((ref_probs >= threshold) == labels).mean())
    table = []
    student_threshold = load_bundle(args.student).threshold if args.student else threshold
    for name, (seconds, probs) in results.items():
        cut = student_threshold if name.startswith("student") else threshold  # each model's own threshold
        accuracy = float(((probs >= cut) == labels).mean())
        table.append(
            {
                "engine": name,
                "headlines/s": round(len(titles) / seconds, 1),
                "x pipeline": round(pipeline_seconds / seconds, 2),
                "x our fp32": round(ref_seconds / seconds, 2),
                "accuracy": round(accuracy, 4),
                "Δ acc vs fp32 (pts)": round(100 * (accuracy - ref_acc), 2),
                "macro-F1": round(float(f1_score(labels, probs >= cut, average="macro")), 4),
                "agreement": round(float(((probs >= cut) == (ref_probs >= threshold)).mean()), 4),
            }
        )
    print(f"{len(titles)} held-out headlines; {machine()}\n")
    print(markdown_table(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "n": len(titles), "rows": table}, indent=2))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
