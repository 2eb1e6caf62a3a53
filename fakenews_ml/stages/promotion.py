"""production_model: the evaluated challenger promoted (atomically) only when every condition still holds."""

from __future__ import annotations

from fakenews_ml.code_versions import code_version
from fakenews_ml.errors import PromotionRefused
from fakenews_ml.manifests import ModelEvaluation, ProductionModel, QuantizedModel
from fakenews_ml.registry import champion_location, promote
from fakenews_ml.stages.evaluation import decide_gate

CODE_VERSION = code_version(__name__)


def promote_challenger(evaluation: ModelEvaluation, quantized: QuantizedModel, note: str = "") -> ProductionModel:
    """Make the evaluated challenger the champion, after re-checking every condition on the evidence given:
    the gate, the quantization parity, that both describe the same bundle, and that the champion is still the
    one it was compared with. Raises ``PromotionRefused`` otherwise; the old champion keeps serving."""
    challenger = evaluation.challenger.bundle
    if quantized.bundle != challenger:
        raise PromotionRefused(f"evaluated bundle {challenger} is not the quantized one {quantized.bundle}")
    gate = decide_gate(
        evaluation.challenger.metrics,
        evaluation.champion.metrics if evaluation.champion else None,
        evaluation.gate_config,
    )
    if not gate.passed:
        raise PromotionRefused(f"champion/challenger gate failed: {gate.reason}")
    if not quantized.passed:
        raise PromotionRefused(
            f"no quantized variant is within its parity bounds (failed: {quantized.failed_variants})"
        )
    current = champion_location()
    outcome = {
        "code_version": CODE_VERSION,
        "champion": challenger,
        "version": evaluation.challenger.version,
        "serving": quantized.serving,
        "serving_variant": quantized.recommended,
        "gate": gate,
    }
    if current == challenger:
        return ProductionModel(**outcome, previous=None, promoted=False, reason="already the champion")
    compared_with = evaluation.champion.bundle if evaluation.champion else None
    if current != compared_with:
        raise PromotionRefused(
            f"the champion changed since the evaluation (now {current}, evaluated against {compared_with}): "
            "re-materialize model_evaluation"
        )
    reason = gate.reason + (f"; {note}" if note else "")
    promote(challenger, reason=reason, expected=compared_with)  # ChampionMoved (refused) if another promotion won
    return ProductionModel(**outcome, previous=current, promoted=True, reason=reason)
