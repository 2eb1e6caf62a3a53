"""Deployment steps: quantize a trained bundle, score it against the champion on the same frozen test
split, and promote it (atomically) only when the gate says it is not worse."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fakenews_ml.artifacts import (
    artifact_dir,
    content_key,
    read_manifest,
    staged_artifact,
    write_manifest,
)
from fakenews_ml.bundle import read_meta
from fakenews_ml.config import GateConfig, QuantizeConfig
from fakenews_ml.errors import BundleError, PromotionRefused
from fakenews_ml.evaluation import evaluate_predictor
from fakenews_ml.predict import VARIANT_DIR, Predictor, variant_path
from fakenews_ml.quantize import REPORT_FILE, quantize_bundle, smoothing_alpha
from fakenews_ml.registry import champion_path, promote
from fakenews_ml.stages.data import load_split

# ----- quantization --------------------------------------------------------------------------------------


def _quantized_manifest(bundle_path: Path, report: dict, config: QuantizeConfig, reused: bool) -> dict:
    variants = {v: str(bundle_path / VARIANT_DIR / v) for v in config.variants}
    failed = [v for v in config.variants if not report[v]["passed"]]
    # Serving ('auto') only ever picks a variant within bounds; a bundle is shippable when at least one is.
    return {
        "bundle_path": str(bundle_path),
        "version": read_meta(bundle_path)["version"],
        "variants": variants,
        "variant_weights": {v: read_meta(path)["weights_sha256"] for v, path in variants.items()},
        "report": report,
        "recommended": report["recommended"],
        "serving_path": str(variant_path(bundle_path, "auto")),
        "passed": len(failed) < len(config.variants),
        "all_passed": not failed,
        "failed_variants": failed,
        "bounds": report["bounds"],
        "reused": reused,
    }


def _existing_report(bundle_path: Path, config: QuantizeConfig, eval_rows: int) -> dict | None:
    file = bundle_path / REPORT_FILE
    try:
        report = json.loads(file.read_text())
        for variant in config.variants:
            read_meta(bundle_path / VARIANT_DIR / variant)
            report[variant]["passed"]
    except (OSError, ValueError, KeyError, TypeError, BundleError):
        return None
    same = (
        report.get("bounds") == {"max_accuracy_drop": config.max_accuracy_drop, "min_agreement": config.min_agreement}
        and report.get("eval_rows") == eval_rows
        and (report.get("int8_smoothing") or {}).get("alpha") == smoothing_alpha(bundle_path, config)
    )
    return report if same else None


def quantize_or_reuse(trained: dict, eval_frame: pd.DataFrame, config: QuantizeConfig) -> dict:
    """Build every configured variant with its parity report, unless this bundle already has them for the
    same bounds (the bundle is content-addressed, so its evaluation split is the same too)."""
    bundle_path = Path(trained["bundle_path"])
    report = _existing_report(bundle_path, config, len(eval_frame))
    if report is not None:
        return _quantized_manifest(bundle_path, report, config, reused=True)
    report = quantize_bundle(bundle_path, eval_frame, config)
    return _quantized_manifest(bundle_path, report, config, reused=False)


# ----- champion / challenger ---------------------------------------------------------------------------


def decide_gate(challenger: dict, champion: dict | None, gate: GateConfig) -> dict:
    """``passed`` when there is no champion, or the challenger's metric >= champion's - tolerance."""
    metric = gate.metric
    mine = challenger.get(metric)
    theirs = champion.get(metric) if champion is not None else None
    decision = {"metric": metric, "tolerance": gate.tolerance, "challenger": mine, "champion": theirs}
    if mine is None:
        return {**decision, "passed": False, "margin": None, "reason": f"challenger has no {metric} on the test split"}
    if champion is None:
        return {**decision, "passed": True, "margin": None, "reason": "no champion yet: the first model is promoted"}
    if theirs is None:
        return {**decision, "passed": True, "margin": None, "reason": f"champion has no {metric} on this split"}
    margin = mine - theirs
    passed = margin >= -gate.tolerance - 1e-12
    verdict = "not worse than" if passed else "worse than"
    return {
        **decision,
        "passed": bool(passed),
        "margin": margin,
        "reason": f"challenger {metric} {mine:.4f} is {verdict} champion {theirs:.4f} (tolerance {gate.tolerance})",
    }


def score_on_split(bundle_path: Path | str, test, test_digest: str) -> dict:
    """A bundle's fp32 metrics (and plots) on a test split, computed once per (bundle, split) and kept in
    ``assets/model_scores/<key>``: the champion is not re-scored on every run."""
    path = Path(bundle_path).resolve()
    meta = read_meta(path)
    key = content_key(meta["version"], meta["weights_sha256"], test_digest)
    target = artifact_dir("model_scores", key)
    existing = read_manifest(target)
    if existing is not None:
        return existing
    with staged_artifact(target) as staging:
        predictor = Predictor.from_path(path, "fp32")
        metrics = evaluate_predictor(predictor, test(), staging / "plots")
        metrics["plots"] = {name: str(target / "plots" / Path(p).name) for name, p in metrics.get("plots", {}).items()}
        return write_manifest(
            staging, {"path": str(path), "version": meta["version"], "test_digest": test_digest, "metrics": metrics}
        )


def evaluate_challenger(trained: dict, splits: dict, gate: GateConfig, champion: Path | None = None) -> dict:
    """Score the challenger and the current champion (fp32 both) on the same frozen test split, and
    decide the gate. ``champion`` defaults to the registry's current champion."""
    champion = champion if champion is not None else champion_path()
    test_digest = splits["splits"]["test"]["digest"]
    frame = {}

    def test():  # read the split only if a score has to be computed
        if "test" not in frame:
            frame["test"] = load_split(splits, "test")
        return frame["test"]

    mine = score_on_split(trained["bundle_path"], test, test_digest)
    theirs = score_on_split(champion, test, test_digest) if champion is not None else None
    decision = decide_gate(mine["metrics"], theirs["metrics"] if theirs else None, gate)
    return {
        "stage": "model_evaluation",
        "key": content_key(mine["version"], theirs and theirs["version"], test_digest, gate.model_dump()),
        "test_digest": test_digest,
        "test_rows": splits["splits"]["test"]["rows"],
        "challenger": mine,
        "champion": {**theirs, "same_as_challenger": theirs["path"] == mine["path"]} if theirs else None,
        "gate": decision,
        "gate_config": gate.model_dump(),
    }


def promote_challenger(evaluation: dict, quantized: dict, note: str = "") -> dict:
    """Make the evaluated challenger the champion, after re-checking every condition on the evidence given:
    the gate, the quantization parity, that both describe the same bundle, and that the champion is still
    the one it was compared with. Raises ``PromotionRefused`` otherwise; the old champion keeps serving."""
    challenger = Path(evaluation["challenger"]["path"]).resolve()
    if Path(quantized["bundle_path"]).resolve() != challenger:
        raise PromotionRefused(f"evaluated bundle {challenger} is not the quantized one {quantized['bundle_path']}")
    gate = decide_gate(
        evaluation["challenger"]["metrics"],
        evaluation["champion"]["metrics"] if evaluation["champion"] else None,
        GateConfig(**evaluation["gate_config"]),
    )
    if not gate["passed"]:
        raise PromotionRefused(f"champion/challenger gate failed: {gate['reason']}")
    if not quantized["passed"]:
        raise PromotionRefused(
            f"no quantized variant is within its parity bounds (failed: {quantized['failed_variants']})"
        )
    current = champion_path()
    outcome = {"gate": gate, "serving_path": quantized["serving_path"], "serving_variant": quantized["recommended"]}
    if current is not None and current == challenger:
        return {
            **outcome,
            "champion_path": str(challenger),
            "version": evaluation["challenger"]["version"],
            "previous_path": None,
            "promoted": False,
            "reason": "already the champion",
        }
    compared_with = Path(evaluation["champion"]["path"]).resolve() if evaluation["champion"] else None
    if current != compared_with:
        raise PromotionRefused(
            f"the champion changed since the evaluation (now {current}, evaluated against {compared_with}): "
            "re-materialize model_evaluation"
        )
    reason = gate["reason"] + (f"; {note}" if note else "")
    promote(challenger, reason=reason)
    return {
        **outcome,
        "champion_path": str(challenger),
        "version": evaluation["challenger"]["version"],
        "previous_path": str(current) if current else None,
        "promoted": True,
        "reason": reason,
    }
