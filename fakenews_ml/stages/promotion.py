"""production_model: the evaluated challenger promoted (atomically) only when every condition still holds."""

from __future__ import annotations

from fakenews_ml.code_versions import code_version
from fakenews_ml.errors import PromotionRefused
from fakenews_ml.manifests import DistilledModel, ModelEvaluation, ProductionModel, QuantizedModel, StudentDecision
from fakenews_ml.registry import champion_location, promote
from fakenews_ml.stages.distillation import within_bounds
from fakenews_ml.stages.evaluation import decide_gate

CODE_VERSION = code_version(__name__)


def decide_serving(teacher: str, distilled: DistilledModel | None) -> StudentDecision:
    """Serve the student when it was distilled from this teacher, its quantized variant passed parity, it is
    within the quality bounds of its teacher on the frozen test split (the check's own test, recomputed from
    the numbers) and it is faster; otherwise the teacher."""
    if distilled is None:
        return StudentDecision(
            serve_student=False, reason="no student", student_bundle=None, teacher_bundle=teacher, comparison=None
        )
    comparison = distilled.comparison
    if distilled.teacher.bundle != teacher:
        reason = f"the student was distilled from {distilled.teacher.bundle}, not from this teacher"
    elif not distilled.quantized.passed:
        reason = (
            f"no quantized variant of the student is within its parity bounds ({distilled.quantized.failed_variants})"
        )
    elif not within_bounds(comparison):
        reason = f"student outside its bounds, teacher kept: {comparison.reason}"
    elif not comparison.faster:
        reason = f"student within its bounds but not faster, teacher kept: {comparison.reason}"
    else:
        reason = f"student served: {comparison.reason}"
    return StudentDecision(
        serve_student=reason.startswith("student served"),
        reason=reason,
        student_bundle=distilled.student.bundle,
        teacher_bundle=teacher,
        comparison=comparison,
    )


def promote_challenger(
    evaluation: ModelEvaluation, quantized: QuantizedModel, note: str = "", distilled: DistilledModel | None = None
) -> ProductionModel:
    """Make the evaluated challenger the champion, after re-checking every condition on the evidence given:
    the gate, the quantization parity, that both describe the same bundle, and that the champion is still the
    one it was compared with. Raises ``PromotionRefused`` otherwise; the old champion keeps serving.

    With ``distilled`` (a student of this challenger), the champion is the student instead when
    ``decide_serving`` says so: the gate is the teacher's, the serving variant the student's."""
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
    decision = decide_serving(challenger, distilled)
    chosen = distilled.student if decision.serve_student else None
    served = distilled.quantized if decision.serve_student else quantized
    outcome = {
        "code_version": CODE_VERSION,
        "champion": chosen.bundle if chosen else challenger,
        "version": chosen.version if chosen else evaluation.challenger.version,
        "serving": served.serving,
        "serving_variant": served.recommended,
        "gate": gate,
        "served": "student" if chosen else "teacher",
        "student": decision if distilled is not None else None,
    }
    if current == outcome["champion"]:
        return ProductionModel(**outcome, previous=None, promoted=False, reason="already the champion")
    compared_with = evaluation.champion.bundle if evaluation.champion else None
    if current != compared_with:
        raise PromotionRefused(
            f"the champion changed since the evaluation (now {current}, evaluated against {compared_with}): "
            "re-materialize model_evaluation"
        )
    reason = gate.reason + (f"; {decision.reason}" if distilled is not None else "") + (f"; {note}" if note else "")
    promote(
        outcome["champion"], reason=reason, expected=compared_with
    )  # ChampionMoved (refused) if another promotion won
    return ProductionModel(**outcome, previous=current, promoted=True, reason=reason)
