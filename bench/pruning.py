"""Pruning on a CPU, all against the same unpruned bundle in one run: structured pruning (whole heads and FFN
neurons removed, ``fakenews_ml.model.pruning``, served in fp32 and int8) and the seed project's unstructured L1
magnitude pruning (``torch.nn.utils.prune``: weights zeroed in place, tensors stay dense), beside the int8
variant the project already serves.

    python bench/pruning.py --model PATH_TO_FP32_BUNDLE [--n 1000] [--shares 0.25:0.25,0.5:0.5] \
        [--l1 0.3,0.5] [--out bench/results/pruning.json]

Every row is served through the same ``Predictor`` the API uses (the TF-IDF blend included) on the bundle's own
frozen test rows; speed is the best of ``--repeats`` rounds,
each round timing every variant once (so a change of load on a shared machine hits all of them alike); size is the safetensors file the variant would be
saved as, and its gzip-compressed size (what sparse weights could save at rest); parity is against fp32.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from sklearn.metrics import f1_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table  # noqa: E402

from fakenews_ml.bundle import HELDOUT_TABLE, load_bundle  # noqa: E402
from fakenews_ml.config import QuantizeConfig  # noqa: E402
from fakenews_ml.model import pruning  # noqa: E402
from fakenews_ml.model.weights import CODECS, pack  # noqa: E402
from fakenews_ml.predict import Predictor  # noqa: E402
from fakenews_ml.quantize import calibration_titles, pruned_model, variant_model  # noqa: E402


def l1_unstructured(model: torch.nn.Module, amount: float) -> torch.nn.Module:
    """The seed's way: each encoder Linear's smallest-|w| ``amount`` of weights set to zero (then the pruning
    re-parametrisation removed, so the zeros are baked into ordinary dense tensors)."""
    from torch.nn.utils import prune

    model = copy.deepcopy(model)
    for name, module in model.named_modules():
        if name.startswith("encoder.") and isinstance(module, torch.nn.Linear):
            prune.l1_unstructured(module, "weight", amount=amount)
            prune.remove(module, "weight")
    return model


def sizes(model: torch.nn.Module, variant: str) -> tuple[int, int]:
    """Bytes of the variant's safetensors file, and of the same file gzip-compressed."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file(pack(model, CODECS[variant]), str(path))
        data = path.read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="fp32 bundle with its calibration titles")
    parser.add_argument("--n", type=int, default=1000, help="frozen test rows to measure on (at most)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="torch threads while timing (the API serves with 1 per worker; default: torch's)"
    )
    parser.add_argument(
        "--shares", default="0.25:0.25,0.5:0.5", help="structured settings, head_share:neuron_share, comma-separated"
    )
    parser.add_argument("--recovery-steps", type=int, default=QuantizeConfig().prune_recovery_steps)
    parser.add_argument("--l1", default="0.3,0.5", help="unstructured L1 amounts, comma-separated")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)

    base = load_bundle(args.model)
    rows = pd.read_csv(args.model / f"{HELDOUT_TABLE}.csv").head(args.n)
    titles, labels = rows["title"].astype(str).tolist(), rows["label"].astype(int).to_numpy()
    calibration = calibration_titles(args.model)
    threshold = base.threshold

    candidates: list[tuple[str, str, torch.nn.Module, dict]] = [("fp32", "fp32", base.model, {})]
    candidates.append(("int8 (served today)", "int8", variant_model(base, "int8", calibration, 0.8), {}))
    for setting in filter(None, args.shares.split(",")):
        heads, neurons = (float(x) for x in setting.split(":"))
        config = QuantizeConfig(
            prune_head_share=heads, prune_neuron_share=neurons, prune_recovery_steps=args.recovery_steps
        )
        started = time.perf_counter()
        print(
            f"pruning {heads:.0%} of heads, {neurons:.0%} of FFN neurons, {args.recovery_steps} recovery steps",
            flush=True,
        )
        model, summary = pruned_model(base, calibration, config)
        summary["seconds_to_prune"] = round(time.perf_counter() - started, 1)
        label = f"structured {heads:.0%} heads, {neurons:.0%} FFN"
        candidates.append((f"{label}, fp32", "pruned", model, summary))
        quantized = variant_model(base, "pruned_int8", calibration, 0.8, model)
        candidates.append((f"{label}, int8", "pruned_int8", quantized, summary))
        if heads == max(float(s.split(":")[0]) for s in args.shares.split(",") if s):
            bare, bare_summary = pruned_model(base, calibration, config.model_copy(update={"prune_recovery_steps": 0}))
            candidates.append((f"{label}, fp32, no recovery", "pruned", bare, bare_summary))
    for amount in (float(x) for x in filter(None, args.l1.split(","))):
        candidates.append((f"L1 unstructured {amount:.0%} (seed)", "fp32", l1_unstructured(base.model, amount), {}))

    if args.threads:  # after building: the pruning itself uses every core
        torch.set_num_threads(args.threads)
    predictors = [Predictor(replace(base, model=m, meta={**base.meta, "variant": v})) for _, v, m, _ in candidates]
    for predictor in predictors:
        predictor.predict_proba(titles[:64])  # warm-up
    best, outputs = [float("inf")] * len(candidates), [None] * len(candidates)
    for _ in range(args.repeats):  # rounds over every variant: a change of load hits them all alike
        for i, predictor in enumerate(predictors):
            started = time.perf_counter()
            outputs[i] = predictor.predict_proba(titles)
            best[i] = min(best[i], time.perf_counter() - started)

    results, ref = [], None
    for (name, variant, model, summary), seconds, probs in zip(candidates, best, outputs, strict=True):
        size, gz = sizes(model, variant)
        if ref is None:
            ref = {"seconds": seconds, "probs": probs, "size": size, "gz": gz}
        predicted, ref_predicted = probs >= threshold, ref["probs"] >= threshold
        params = pruning.parameter_count(model) if variant != "int8" and "int8" not in variant else None
        zeros = sum(
            int((p == 0).sum()) for n, p in model.named_parameters() if n.startswith("encoder.") and p.dim() == 2
        )
        results.append(
            {
                "variant": name,
                "headlines/s": round(len(titles) / seconds, 1),
                "x fp32": round(ref["seconds"] / seconds, 2),
                "size MB": round(size / 1e6, 1),
                "x size": round(size / ref["size"], 2),
                "gzip MB": round(gz / 1e6, 1),
                "params M": round(params / 1e6, 2) if params else "",
                "zero weights": zeros if variant in ("fp32", "pruned") else "",
                "accuracy": round(float((predicted == labels).mean()), 4),
                "macro-F1": round(float(f1_score(labels, predicted, average="macro")), 4),
                "ROC-AUC": round(float(roc_auc_score(labels, probs)), 4),
                "agreement": round(float((predicted == ref_predicted).mean()), 4),
                "mean abs Δp": round(float(np.abs(probs - ref["probs"]).mean()), 4),
                **({"pruning": summary} if summary else {}),
            }
        )
        print(f"{name}: {results[-1]['headlines/s']} headlines/s", flush=True)
    table = [{k: v for k, v in row.items() if k != "pruning"} for row in results]
    print(f"\n{len(titles)} frozen test headlines of {args.model.name}; {machine()}\n")
    print(markdown_table(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "n": len(titles), "rows": results}, indent=2))


if __name__ == "__main__":
    main()
