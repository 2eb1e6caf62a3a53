"""Cheap CPU serving variants of a trained bundle: dynamic int8 (``torch.ao``) and bf16, each saved as a
self-contained bundle under ``<bundle>/variants/<name>``, with a parity report against fp32."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from fakenews_ml.bundle import bundle_size, load_bundle, save_bundle
from fakenews_ml.config import QuantizeConfig
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.evaluation import parity_report
from fakenews_ml.inference import predict_probs
from fakenews_ml.model.weights import quantize_int8
from fakenews_ml.predict import VARIANT_DIR

REPORT_FILE = "quantization.json"


def _variant_model(model: torch.nn.Module, variant: str) -> tuple[torch.nn.Module, torch.dtype | None]:
    if variant == "int8":
        return quantize_int8(model), None
    if variant == "bf16":
        return model.to(torch.bfloat16), torch.bfloat16
    raise ValueError(f"unknown quantization variant {variant!r}")


def _timed_probs(model, split, pad_id, autocast) -> tuple:
    predict_probs(model, split, pad_id, autocast_dtype=autocast)  # warm-up: first-call kernel selection
    started = time.perf_counter()
    probs = predict_probs(model, split, pad_id, autocast_dtype=autocast)
    return probs, len(split) / (time.perf_counter() - started)


def quantize_bundle(bundle_path: Path | str, eval_split: TokenizedSplit, config: QuantizeConfig | None = None) -> dict:
    """Build every configured variant, measure it against fp32 on ``eval_split`` (labelled rows), save it,
    and write ``quantization.json`` into the fp32 bundle. Returns that report."""
    config = config or QuantizeConfig()
    bundle_path = Path(bundle_path)
    base = load_bundle(bundle_path)
    pad_id = base.tokenizer.pad_token_id
    labels = eval_split.labels
    ref_probs, ref_speed = _timed_probs(base.model, eval_split, pad_id, None)
    report = {"eval_rows": len(eval_split), "fp32": {"size_bytes": bundle_size(bundle_path), "rows_per_second": round(ref_speed, 1)}}
    for variant in config.variants:
        model, autocast = _variant_model(load_bundle(bundle_path, verify=False).model, variant)
        probs, speed = _timed_probs(model, eval_split, pad_id, autocast)
        parity = parity_report(labels, ref_probs, probs, base.threshold)
        parity["passed"] = bool(-parity["accuracy_delta"] <= config.max_accuracy_drop and parity["agreement"] >= config.min_agreement)
        path = save_bundle(
            bundle_path / VARIANT_DIR / variant,
            model,
            base.tokenizer,
            base.model.encoder.config,
            base.model_config,
            threshold=base.threshold,
            metrics={"fp32": base.metrics, "parity": parity},
            lineage={**base.lineage, "parent_bundle": {"path": str(bundle_path), "version": base.version}},
            variant=variant,
            train_config=base.meta.get("train_config"),
        )
        report[variant] = {
            **parity,
            "size_bytes": bundle_size(path),
            "size_ratio": round(bundle_size(path) / report["fp32"]["size_bytes"], 3),
            "rows_per_second": round(speed, 1),
            "speedup_vs_fp32": round(speed / ref_speed, 2),
            "path": str(path),
        }
    passing = [v for v in config.variants if report[v]["passed"]]
    report["recommended"] = max(passing, key=lambda v: report[v]["rows_per_second"], default="fp32")
    report["bounds"] = {"max_accuracy_drop": config.max_accuracy_drop, "min_agreement": config.min_agreement}
    # written beside and renamed: a server choosing its variant never reads half a report
    partial = bundle_path / f".{REPORT_FILE}.partial"
    partial.write_text(json.dumps(report, indent=2))
    partial.replace(bundle_path / REPORT_FILE)
    return report
