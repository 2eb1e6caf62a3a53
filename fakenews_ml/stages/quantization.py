"""quantized_model: CPU serving variants of a trained bundle (int8, bf16, optionally pruned), each a bundle of its own inside it,
with a parity report against fp32 on the frozen test split."""

from __future__ import annotations

import json

import pandas as pd

from fakenews_ml.artifacts import load_frame
from fakenews_ml.bundle import read_meta
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import QuantizeConfig
from fakenews_ml.environment import artifact_store
from fakenews_ml.errors import BundleError
from fakenews_ml.manifests import NewsSplits, QuantizedModel, TrainedModel, VariantParity
from fakenews_ml.predict import VARIANT_DIR, variant_path
from fakenews_ml.quantize import REPORT_FILE, pruning_settings, quantize_bundle, smoothing_alpha
from fakenews_ml.store import join

CODE_VERSION = code_version(__name__)


def _manifest(bundle: str, report: dict, config: QuantizeConfig, reused: bool) -> QuantizedModel:
    store = artifact_store()
    path = store.fetch(bundle)
    variants = {v: join(bundle, VARIANT_DIR, v) for v in config.variants}
    failed = [v for v in config.variants if not report[v]["passed"]]
    # Serving ('auto') only ever picks a variant within bounds; a bundle is shippable when at least one is.
    return QuantizedModel(
        code_version=CODE_VERSION,
        bundle=bundle,
        version=read_meta(path)["version"],
        variants=variants,
        variant_weights={v: read_meta(store.fetch(loc))["weights_sha256"] for v, loc in variants.items()},
        parity={v: VariantParity(**report[v]) for v in config.variants},
        fp32_rows_per_second=report["fp32"]["rows_per_second"],
        eval_rows=report["eval_rows"],
        int8_smoothing=report.get("int8_smoothing"),
        pruning=report.get("pruning"),
        recommended=report["recommended"],
        serving=store.location(variant_path(path, "auto")),
        passed=len(failed) < len(config.variants),
        all_passed=not failed,
        failed_variants=failed,
        bounds=report["bounds"],
        reused=reused,
    )


def _existing_report(bundle: str, config: QuantizeConfig, eval_rows: int) -> dict | None:
    """The bundle's quantization.json when it was made by this code for the same variants, bounds and rows."""
    path = artifact_store().path(bundle)
    try:
        report = json.loads((path / REPORT_FILE).read_text())
        for variant in config.variants:
            read_meta(path / VARIANT_DIR / variant)
            VariantParity(**report[variant])
    except (OSError, ValueError, KeyError, TypeError, BundleError):
        return None
    same = (
        report.get("code_version") == CODE_VERSION
        and report.get("bounds")
        == {"max_accuracy_drop": config.max_accuracy_drop, "min_agreement": config.min_agreement}
        and report.get("eval_rows") == eval_rows
        and (report.get("int8_smoothing") or {}).get("alpha") == smoothing_alpha(path, config)
        and _same_pruning(report.get("pruning"), pruning_settings(config))
    )
    return report if same else None


def _same_pruning(recorded: dict | None, wanted: dict | None) -> bool:
    if wanted is None:
        return True  # no pruned variant asked for: a report that also has one serves the others as well
    return recorded is not None and all(recorded.get(k) == v for k, v in wanted.items())


def quantize_or_reuse(trained: TrainedModel, splits: NewsSplits, config: QuantizeConfig) -> QuantizedModel:
    """Build every configured variant with its parity report on the frozen test split, unless this bundle already
    has them for the same bounds (the bundle is content-addressed, so its test split is the same too)."""
    store = artifact_store()
    test = splits.splits["test"]
    report = _existing_report(trained.bundle, config, test.rows)
    if report is not None:
        return _manifest(trained.bundle, report, config, reused=True)
    eval_frame: pd.DataFrame = load_frame(test)
    report = quantize_bundle(store.fetch(trained.bundle), eval_frame, config, code_version=CODE_VERSION)
    store.publish(trained.bundle)
    return _manifest(trained.bundle, report, config, reused=False)
