"""Cheap CPU serving variants of a trained bundle: dynamic int8 (``torch.ao``, its inputs smoothed on the
bundle's calibration titles), bf16, and structurally pruned (``model/pruning.py``: heads and FFN neurons removed,
then a short recovery fine-tune; fp32 or int8), each saved as a self-contained bundle under ``<bundle>/variants/<name>``,
with a parity report against fp32."""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fakenews_ml.atomic import write_json
from fakenews_ml.bundle import CALIBRATION_TABLE, LoadedBundle, bundle_size, load_bundle, save_bundle
from fakenews_ml.config import QuantizeConfig
from fakenews_ml.data.tokenize import tokenize_frame
from fakenews_ml.errors import BundleError
from fakenews_ml.metrics import parity_report
from fakenews_ml.model import pruning
from fakenews_ml.model.inference import padded_batches, predict_probs
from fakenews_ml.model.smoothing import input_maxima, smooth_inputs
from fakenews_ml.model.weights import quantize_int8
from fakenews_ml.predict import VARIANT_DIR, Predictor, predict_all

REPORT_FILE = "quantization.json"


def calibration_titles(bundle_path: Path) -> list[str]:
    """The bundle's sample of train titles."""
    path = bundle_path / f"{CALIBRATION_TABLE}.csv"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:  # unreadable, empty, undecodable
        raise BundleError(f"{path} cannot be read ({exc}); delete it to quantize without smoothing") from None
    if "title" not in frame.columns or frame.empty:
        raise BundleError(f"{path} has no 'title' column or no rows; delete it to quantize without smoothing")
    return frame["title"].tolist()


def smoothing_alpha(bundle_path: Path, config: QuantizeConfig) -> float | None:
    """The SmoothQuant strength the int8 variant of this bundle gets: None without calibration titles."""
    return config.smoothing_alpha if (bundle_path / f"{CALIBRATION_TABLE}.csv").exists() else None


def _smoothed(base: LoadedBundle, model: torch.nn.Module, titles: list[str], alpha: float) -> torch.nn.Module:
    split = tokenize_frame(pd.DataFrame({"title": titles}), base.tokenizer, base.model_config.max_length)
    maxima = input_maxima(model, lambda m: predict_probs(m, split, base.tokenizer.pad_token_id))
    return smooth_inputs(model, maxima, alpha)


def pruned_model(base: LoadedBundle, titles: list[str], config: QuantizeConfig) -> tuple[torch.nn.Module, dict]:
    """``base``'s model with the configured shares of heads and FFN neurons removed (ranked on ``titles``, the
    bundle's calibration sample), then fine-tuned for ``prune_recovery_steps`` towards ``base``'s own output on
    the same titles. Returns it with a summary (shapes, parameters, recovery losses)."""
    if not titles:
        raise BundleError(
            f"{base.path}: the pruned variants need the bundle's {CALIBRATION_TABLE}.csv (train titles to rank "
            "heads and neurons on); retrain the bundle, or leave pruned variants out"
        )
    torch.manual_seed(0)
    split = tokenize_frame(pd.DataFrame({"title": titles}), base.tokenizer, base.model_config.max_length)
    batches = list(padded_batches(split, base.tokenizer.pad_token_id, config.prune_batch_size))
    student = copy.deepcopy(base.model).float().eval()
    scores = pruning.importance(student, batches)
    pruning.prune(student.encoder, pruning.plan(scores, config.prune_head_share, config.prune_neuron_share))
    teacher = base.model.eval()
    with torch.inference_mode():
        teacher_logits = {id(b): teacher(b["input_ids"], b["attention_mask"]) for b in batches}
    losses = pruning.recover(
        student, lambda b: teacher_logits[id(b)], batches, config.prune_recovery_steps, config.prune_learning_rate
    )
    summary = {
        "shapes": pruning.shapes_of(student.encoder),
        "parameters": pruning.parameter_count(student),
        "parameters_fp32": pruning.parameter_count(base.model),
        "recovery_loss_first": round(losses[0], 5) if losses else None,
        "recovery_loss_last": round(losses[-1], 5) if losses else None,
    }
    return student, summary


def variant_model(
    base: LoadedBundle,
    variant: str,
    calibration: list[str],
    alpha: float | None,
    pruned: torch.nn.Module | None = None,
) -> torch.nn.Module:
    """``base``'s model as ``variant`` (int8 smoothed with ``alpha`` on ``calibration`` titles when given;
    the pruned variants start from ``pruned``, the model ``pruned_model`` made)."""
    if variant in ("int8", "pruned_int8"):
        source = base.model if variant == "int8" else pruned
        return quantize_int8(_smoothed(base, source, calibration, alpha) if alpha is not None else source)
    if variant == "bf16":
        return copy.deepcopy(base.model).to(torch.bfloat16)
    if variant == "pruned":
        return pruned
    raise ValueError(f"unknown quantization variant {variant!r}")


def pruning_settings(config: QuantizeConfig) -> dict | None:
    """The settings a pruned variant was made with (None when no pruned variant is configured)."""
    if not any(v.startswith("pruned") for v in config.variants):
        return None
    return config.model_dump(include={f for f in QuantizeConfig.model_fields if f.startswith("prune_")})


def _timed_probs(bundle: LoadedBundle, titles: list[str]) -> tuple[np.ndarray, float]:
    """The served probabilities (blend included) and rows/s, through the same Predictor the API uses."""
    predictor = Predictor(bundle)
    predictor.predict_proba(titles[:64])  # warm-up: first-call kernel selection
    started = time.perf_counter()
    probs = predict_all(predictor, titles)["prob_fake"].to_numpy()
    return probs, len(titles) / (time.perf_counter() - started)


def quantize_bundle(
    bundle_path: Path | str, eval_frame: pd.DataFrame, config: QuantizeConfig | None = None, code_version: str = ""
) -> dict:
    """Build every configured variant, measure it against fp32 on ``eval_frame`` (labelled ``title``,
    ``label`` rows), save it, and write ``quantization.json`` into the fp32 bundle (stamped with the caller's
    ``code_version``, so a report made by other code is not reused). Returns that report."""
    config = config or QuantizeConfig()
    bundle_path = Path(bundle_path)
    base = load_bundle(bundle_path)
    titles, labels = eval_frame["title"].astype(str).tolist(), eval_frame["label"].astype(int).to_numpy()
    ref_probs, ref_speed = _timed_probs(base, titles)
    report = {
        "eval_rows": len(titles),
        "fp32": {"size_bytes": bundle_size(bundle_path), "rows_per_second": round(ref_speed, 1)},
    }
    alpha = smoothing_alpha(bundle_path, config)
    prune = pruning_settings(config)
    has_titles = (bundle_path / f"{CALIBRATION_TABLE}.csv").exists()
    calibration = calibration_titles(bundle_path) if (alpha is not None or prune) and has_titles else []
    pruned, pruning_summary = pruned_model(base, calibration, config) if prune else (None, None)
    for variant in config.variants:
        model = variant_model(base, variant, calibration, alpha, pruned)
        probs, speed = _timed_probs(replace(base, model=model, meta={**base.meta, "variant": variant}), titles)
        parity = parity_report(labels, ref_probs, probs, base.threshold)
        parity["passed"] = bool(
            -parity["accuracy_delta"] <= config.max_accuracy_drop and parity["agreement"] >= config.min_agreement
        )
        path = save_bundle(
            bundle_path / VARIANT_DIR / variant,
            model,
            base.tokenizer,
            (pruned if variant.startswith("pruned") else base.model).encoder.config,  # the shapes it was cut to
            base.model_config,
            threshold=base.threshold,
            metrics={"fp32": base.metrics, "parity": parity},
            lineage={**base.lineage, "variant_of": {"version": base.version, "location": "../.."}},
            variant=variant,
            train_config=base.meta.get("train_config"),
            lexical=base.lexical,
            blend_weights=base.meta.get("blend"),
            domain=base.domain,  # the fp32 profile: a variant's embeddings differ by its parity bounds only
            version=base.version,  # the variant is a field beside the version, not a model of its own
        )
        report[variant] = {
            **parity,
            "size_bytes": bundle_size(path),
            "size_ratio": round(bundle_size(path) / report["fp32"]["size_bytes"], 3),
            "rows_per_second": round(speed, 1),
            "speedup_vs_fp32": round(speed / ref_speed, 2),
            "location": f"{VARIANT_DIR}/{variant}",  # relative to the bundle
        }
    passing = [v for v in config.variants if report[v]["passed"]]
    report["recommended"] = max(passing, key=lambda v: report[v]["rows_per_second"], default="fp32")
    report["bounds"] = {"max_accuracy_drop": config.max_accuracy_drop, "min_agreement": config.min_agreement}
    report["int8_smoothing"] = {"alpha": alpha, "calibration_rows": len(calibration)} if alpha is not None else None
    report["pruning"] = {**prune, **pruning_summary} if prune else None
    report["code_version"] = code_version
    write_json(bundle_path / REPORT_FILE, report)  # atomic: a server choosing its variant never reads half a report
    return report
