"""model_evaluation: the challenger and the current champion scored on the same frozen test split, and the
champion/challenger gate's verdict."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, load_frame
from fakenews_ml.bundle import read_meta
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import GateConfig
from fakenews_ml.environment import artifact_store
from fakenews_ml.evaluation import evaluate_predictor
from fakenews_ml.manifests import GateDecision, Metrics, ModelEvaluation, ModelScore, NewsSplits, TrainedModel
from fakenews_ml.predict import Predictor
from fakenews_ml.registry import champion_location
from fakenews_ml.store import join

CODE_VERSION = code_version(__name__)


def decide_gate(challenger: Metrics | None, champion: Metrics | None, gate: GateConfig) -> GateDecision:
    """``passed`` when there is no champion, or the challenger's metric >= champion's - tolerance."""
    metric = gate.metric
    mine = getattr(challenger, metric) if challenger is not None else None
    theirs = getattr(champion, metric) if champion is not None else None
    decision = {"metric": metric, "tolerance": gate.tolerance, "challenger": mine, "champion": theirs}
    if mine is None:
        return GateDecision(
            **decision, passed=False, margin=None, reason=f"challenger has no {metric} on the test split"
        )
    if champion is None:
        return GateDecision(**decision, passed=True, margin=None, reason="no champion yet: the first model is promoted")
    if theirs is None:
        return GateDecision(**decision, passed=True, margin=None, reason=f"champion has no {metric} on this split")
    margin = mine - theirs
    passed = margin >= -gate.tolerance - 1e-12
    verdict = "not worse than" if passed else "worse than"
    return GateDecision(
        **decision,
        passed=bool(passed),
        margin=margin,
        reason=f"challenger {metric} {mine:.4f} is {verdict} champion {theirs:.4f} (tolerance {gate.tolerance})",
    )


def score_on_split(bundle: str, test: Callable[[], pd.DataFrame], test_digest: str) -> ModelScore:
    """A bundle's fp32 metrics (and plots) on a test split, computed once per (bundle, split) and kept in
    ``assets/model_scores/<key>``: the champion is not re-scored on every run."""
    store = artifact_store()
    meta = read_meta(store.fetch(bundle))
    key = content_key(meta["version"], meta["weights_sha256"], test_digest, CODE_VERSION)
    location = artifact_location("model_scores", key)

    def build(staging) -> ModelScore:
        metrics = evaluate_predictor(Predictor.from_path(store.fetch(bundle), "fp32"), test(), staging / "plots")
        plots = {name: join(location, "plots", f"{name}.png") for name in metrics.pop("plots", {})}
        for name in ("model_version", "variant"):
            metrics.pop(name, None)
        return ModelScore(
            code_version=CODE_VERSION,
            key=key,
            bundle=bundle,
            version=meta["version"],
            test_digest=test_digest,
            metrics=Metrics(**metrics),
            plots=plots,
        )

    return cached_or_build(location, ModelScore, build)


def evaluate_challenger(
    trained: TrainedModel, splits: NewsSplits, gate: GateConfig, champion: str | None = None
) -> ModelEvaluation:
    """Score the challenger and the current champion (fp32 both) on the same frozen test split, and decide
    the gate. ``champion`` (a location) defaults to the registry's current champion."""
    champion = champion if champion is not None else champion_location()
    test_file = splits.splits["test"]
    frame: dict[str, pd.DataFrame] = {}

    def test() -> pd.DataFrame:  # read the split only if a score has to be computed
        if "test" not in frame:
            frame["test"] = load_frame(test_file)
        return frame["test"]

    mine = score_on_split(trained.bundle, test, test_file.digest)
    theirs = score_on_split(champion, test, test_file.digest) if champion is not None else None
    return ModelEvaluation(
        code_version=CODE_VERSION,
        key=content_key(mine.version, theirs and theirs.version, test_file.digest, gate.model_dump(), CODE_VERSION),
        test_digest=test_file.digest,
        test_rows=test_file.rows,
        challenger=mine,
        champion=theirs,
        champion_is_challenger=theirs is not None and theirs.bundle == mine.bundle,
        gate=decide_gate(mine.metrics, theirs.metrics if theirs else None, gate),
        gate_config=gate,
    )
