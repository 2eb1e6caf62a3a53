"""distilled_model: a smaller student trained on its teacher's probabilities through the one training path
(``train_model``), quantized like any bundle (``quantize_or_reuse``), and compared with the teacher on the
frozen test split: quality (the served variants' metrics) and speed (the served variants timed in one process,
alternating). The student is a normal bundle at ``models/<key>``; its lineage names its teacher."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from fakenews_ml.artifacts import content_key, load_frame, load_tokenized
from fakenews_ml.bundle import load_bundle
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import DistillConfig, QuantizeConfig, TrainConfig
from fakenews_ml.data.splits import normalize_title
from fakenews_ml.data.tokenize import TokenizedSplit, tokenize_titles
from fakenews_ml.device import resolve_precision
from fakenews_ml.environment import artifact_store
from fakenews_ml.manifests import (
    DistilledModel,
    Metrics,
    NewsSplits,
    QuantizedModel,
    ServedSpeed,
    StudentComparison,
    TeacherRef,
    TokenizedNews,
    TrainedModel,
)
from fakenews_ml.model.encoder import load_tokenizer
from fakenews_ml.model.lightning_module import SoftTargets
from fakenews_ml.predict import Predictor, predict_all
from fakenews_ml.registry import MODELS
from fakenews_ml.stages.evaluation import score_on_split
from fakenews_ml.stages.quantization import quantize_or_reuse
from fakenews_ml.stages.training import _reusable, bundle_manifest, model_config_for, training_lineage
from fakenews_ml.store import join
from fakenews_ml.train import train_model

CODE_VERSION = code_version(__name__)
STUDENT_VARIANTS = ["int8"]  # what the student is served as (the teacher's variant list is quantized_model's)
log = logging.getLogger(__name__)


def student_layers(teacher_layers: int, config: DistillConfig) -> int:
    """The layers the student keeps: ``student_layers``, or half the teacher's; always fewer than the teacher's."""
    layers = config.student_layers if config.student_layers is not None else max(1, teacher_layers // 2)
    if layers >= teacher_layers:
        raise ValueError(
            f"student_layers {layers}: a student keeps fewer layers than its teacher, which has {teacher_layers}"
        )
    return layers


def distillation_key(
    teacher: TrainedModel, tokenized: TokenizedNews, model_config, train_config: TrainConfig, config: DistillConfig,
    unlabelled: list[str],
) -> str:  # fmt: skip
    """What changes the student's weights: the teacher's weights, the tokens, the student's settings, the recipe
    (not the serving bounds), the unlabelled titles and this code."""
    settings = train_config.model_dump(exclude={"progress_bar", "num_threads"})
    settings["precision"] = resolve_precision(train_config.precision, train_config.accelerator)
    recipe = config.model_dump(
        include={"init_from", "lexical", "temperature", "soft_weight", "hard_weight", "prediction_log_titles"}
    )
    return content_key(
        teacher.weights_sha256,
        tokenized.fingerprint,
        model_config.model_dump(),
        settings,
        recipe,
        content_key(unlabelled) if unlabelled else None,
        CODE_VERSION,
    )


def unlabelled_titles(log_frame: pd.DataFrame | None, splits: dict[str, pd.DataFrame], most: int) -> list[str]:
    """Up to ``most`` distinct logged titles (newest first) that no split holds (by the splits' own normalised
    key: a held-out headline replayed through the API never becomes training data)."""
    if log_frame is None or log_frame.empty or most <= 0:
        return []
    known = {normalize_title(t) for frame in splits.values() for t in frame["title"].astype(str)}
    chosen, seen = [], set()
    for title in log_frame["title"].astype(str):
        key = normalize_title(title)
        if key and key not in known and key not in seen:
            seen.add(key)
            chosen.append(title)
            if len(chosen) == most:
                break
    return chosen


def _with_unlabelled(train: TokenizedSplit, titles: list[str], teacher_labels: np.ndarray, tokenizer, max_length: int):
    """The train split with ``titles`` appended (their label: the teacher's decision, for class counts only)."""
    flat, offsets = tokenize_titles(titles, tokenizer, max_length)
    return TokenizedSplit(
        np.concatenate([train.input_ids, flat.astype(train.input_ids.dtype)]),
        np.concatenate([train.offsets, offsets[1:] + train.offsets[-1]]),
        np.concatenate([train.labels, teacher_labels.astype(train.labels.dtype)]),
        np.concatenate([train.ids, np.array([f"log-{i}" for i in range(len(titles))])]),
    )


def train_student(
    teacher: TrainedModel,
    tokenized: TokenizedNews,
    splits: NewsSplits,
    train_config: TrainConfig,
    config: DistillConfig,
    *,
    log_frame: pd.DataFrame | None = None,
    make_logger: Callable[[str], object] | None = None,
) -> tuple[TrainedModel, dict]:
    """Train (or reuse) the student bundle; returns its manifest and what the recipe decided (layers, lexical)."""
    store = artifact_store()
    frames = {name: load_frame(splits.splits[name]) for name in tokenized.splits}
    teacher_bundle = load_bundle(store.fetch(teacher.bundle))
    layers = student_layers(teacher_bundle.model.encoder.config.num_hidden_layers, config)
    architecture = teacher.architecture
    model_config = model_config_for(tokenized, architecture.pooling, architecture.dropout).model_copy(
        update={"encoder_layers": layers}
    )
    student_config = train_config.model_copy(update={"lexical_blend": config.lexical != "none"})
    extra = unlabelled_titles(log_frame, frames, config.prediction_log_titles)
    key = distillation_key(teacher, tokenized, model_config, student_config, config, extra)
    location = join(MODELS, key)
    recipe = {"layers": layers, "teacher_layers": teacher_bundle.model.encoder.config.num_hidden_layers}
    reused = _reusable(location, key)
    if reused is not None:
        return reused, {**recipe, "unlabelled": len(extra)}

    titles = {name: frame["title"].astype(str).tolist() for name, frame in frames.items()}
    teacher_predictor = Predictor(teacher_bundle)  # fp32, its lexical blend included: what the student imitates
    train_probs = predict_all(teacher_predictor, titles["train"] + extra)["prob_fake"].to_numpy()
    tokens = load_tokenized(tokenized)
    tokenizer = load_tokenizer(model_config)
    labelled = np.ones(len(train_probs), dtype=bool)
    if extra:
        labelled[len(titles["train"]) :] = False
        teacher_labels = (train_probs[len(titles["train"]) :] >= teacher_bundle.threshold).astype(np.int8)
        tokens["train"] = _with_unlabelled(tokens["train"], extra, teacher_labels, tokenizer, model_config.max_length)
        titles["train"] = titles["train"] + extra
    lineage = training_lineage(key, tokenized, splits)
    lineage["teacher"] = {
        "bundle": teacher.bundle,
        "version": teacher.version,
        "weights_sha256": teacher.weights_sha256,
    }
    lineage["distillation"] = {
        **config.model_dump(),
        "student_layers": layers,
        "teacher_layers": recipe["teacher_layers"],
        "unlabelled_titles": len(extra),
        "code_version": CODE_VERSION,
    }
    result = train_model(
        tokens,
        tokenizer,
        model_config,
        student_config,
        store.path(location),
        lineage=lineage,
        logger=make_logger(key) if make_logger else None,
        work_dir=store.path(join("runs", key)),
        heldout=frames["test"],
        titles=titles,
        soft_targets=SoftTargets(
            probs=torch.from_numpy(train_probs.astype(np.float32)),
            labelled=torch.from_numpy(labelled),
            temperature=config.temperature,
            soft_weight=config.soft_weight,
            hard_weight=config.hard_weight,
        ),
        initial_state=teacher_bundle.model.state_dict() if config.init_from == "teacher" else None,
        lexical_if_better=config.lexical == "auto",
    )
    store.publish(location)
    return bundle_manifest(location, reused=False, seconds=round(result.seconds, 1)), {
        **recipe,
        "unlabelled": len(extra),
    }


def _served_metrics(predictor: Predictor, frame: pd.DataFrame) -> Metrics:
    from fakenews_ml.evaluation import evaluate_predictor

    metrics = evaluate_predictor(predictor, frame)
    for name in ("model_version", "variant"):
        metrics.pop(name, None)
    return Metrics(**metrics)


def time_alternating(predictors: dict[str, Predictor], titles: list[str], rounds: int) -> dict[str, list[float]]:
    """Rows/s of each predictor over ``titles``, the predictors taking turns round after round: on a shared
    machine, load that comes and goes hits both alike, so their ratio is fair where absolute rates are not."""
    for predictor in predictors.values():
        predictor.predict_proba(titles[:64])  # warm-up: first-call kernel selection
    rates: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            started = time.perf_counter()
            predict_all(predictor, titles)
            rates[name].append(round(len(titles) / (time.perf_counter() - started), 1))
    return rates


def _inside(f1_drop: float, auc_drop: float | None, max_f1_drop: float, max_auc_drop: float) -> bool:
    return bool(f1_drop <= max_f1_drop + 1e-12 and (auc_drop is None or auc_drop <= max_auc_drop + 1e-12))


def within_bounds(comparison: StudentComparison) -> bool:
    """The quality bounds, recomputed from the numbers (the check and the promotion both ask this, so the
    served variant switches exactly when the check passes)."""
    return _inside(
        comparison.macro_f1_drop, comparison.roc_auc_drop, comparison.max_macro_f1_drop, comparison.max_roc_auc_drop
    )


def compare_with_teacher(
    teacher: TrainedModel,
    teacher_quantized: QuantizedModel,
    student: TrainedModel,
    student_quantized: QuantizedModel,
    splits: NewsSplits,
    config: DistillConfig,
) -> StudentComparison:
    """Both served variants (and the fp32 models) scored on the frozen test split, and timed alternately."""
    store = artifact_store()
    test_file = splits.splits["test"]
    frame = load_frame(test_file)
    teacher_fp32 = score_on_split(teacher.bundle, lambda: frame, test_file.digest).metrics  # cached per bundle
    student_fp32 = score_on_split(student.bundle, lambda: frame, test_file.digest).metrics
    served = {
        "teacher": Predictor.from_path(store.fetch(teacher.bundle), teacher_quantized.recommended),
        "student": Predictor.from_path(store.fetch(student.bundle), student_quantized.recommended),
    }
    teacher_served, student_served = (_served_metrics(served[name], frame) for name in ("teacher", "student"))
    titles = frame["title"].astype(str).tolist()
    titles = (titles * (config.speed_rows // max(len(titles), 1) + 1))[: config.speed_rows]
    rates = time_alternating(served, titles, config.speed_rounds)
    speeds = {
        name: ServedSpeed(variant=predictor.bundle.variant, rows_per_second=max(rates[name]), rounds=rates[name])
        for name, predictor in served.items()
    }
    f1_drop = teacher_fp32.macro_f1 - student_served.macro_f1
    auc_drop = (
        teacher_fp32.roc_auc - student_served.roc_auc
        if teacher_fp32.roc_auc is not None and student_served.roc_auc is not None
        else None
    )
    speedup = speeds["student"].rows_per_second / speeds["teacher"].rows_per_second
    inside = _inside(f1_drop, auc_drop, config.max_macro_f1_drop, config.max_roc_auc_drop)
    faster = speedup > config.min_speedup
    reason = (
        f"student {student_served.macro_f1:.4f} macro-F1 / {_text(student_served.roc_auc)} ROC-AUC "
        f"({speeds['student'].variant}) vs teacher {teacher_fp32.macro_f1:.4f} / {_text(teacher_fp32.roc_auc)}: "
        f"{100 * f1_drop:+.2f} / {_text(None if auc_drop is None else 100 * auc_drop, '+.2f')} points below "
        f"(bounds {100 * config.max_macro_f1_drop:.2f} / {100 * config.max_roc_auc_drop:.2f}); "
        f"{speedup:.2f}x the teacher's {speeds['teacher'].variant} throughput (needs > {config.min_speedup:.2f}x)"
    )
    return StudentComparison(
        teacher=teacher_fp32,
        teacher_served=teacher_served,
        student=student_served,
        student_fp32=student_fp32,
        macro_f1_drop=float(f1_drop),
        roc_auc_drop=None if auc_drop is None else float(auc_drop),
        max_macro_f1_drop=config.max_macro_f1_drop,
        max_roc_auc_drop=config.max_roc_auc_drop,
        within_bounds=bool(inside),
        teacher_speed=speeds["teacher"],
        student_speed=speeds["student"],
        speedup=round(float(speedup), 3),
        min_speedup=config.min_speedup,
        faster=bool(faster),
        test_rows=test_file.rows,
        test_digest=test_file.digest,
        reason=reason,
    )


def _text(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _parameters(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def distill_or_reuse(
    teacher: TrainedModel,
    teacher_quantized: QuantizedModel,
    tokenized: TokenizedNews,
    splits: NewsSplits,
    train_config: TrainConfig,
    config: DistillConfig,
    *,
    quantize: QuantizeConfig | None = None,
    log_frame: pd.DataFrame | None = None,
    make_logger: Callable[[str], object] | None = None,
) -> DistilledModel:
    """Train (or reuse) the student, quantize it (int8, with the parity report), compare it with the teacher."""
    if teacher_quantized.bundle != teacher.bundle:
        raise ValueError(f"the quantized bundle {teacher_quantized.bundle} is not the teacher {teacher.bundle}")
    student, recipe = train_student(
        teacher, tokenized, splits, train_config, config, log_frame=log_frame, make_logger=make_logger
    )
    quantize = (quantize or QuantizeConfig()).model_copy(update={"variants": STUDENT_VARIANTS})
    student_quantized = quantize_or_reuse(student, splits, quantize)
    comparison = compare_with_teacher(teacher, teacher_quantized, student, student_quantized, splits, config)
    store = artifact_store()
    student_bundle = load_bundle(store.fetch(student.bundle))
    teacher_model = load_bundle(store.fetch(teacher.bundle)).model
    choice = student_bundle.metrics.get("lexical_choice")
    return DistilledModel(
        code_version=CODE_VERSION,
        student=student,
        quantized=student_quantized,
        teacher=TeacherRef(
            bundle=teacher.bundle,
            version=teacher.version,
            weights_sha256=teacher.weights_sha256,
            layers=recipe["teacher_layers"],
            parameters=_parameters(teacher_model),
        ),
        layers=student_bundle.model.encoder.config.num_hidden_layers,
        parameters=_parameters(student_bundle.model),
        lexical="own" if student_bundle.lexical is not None else "none",
        lexical_choice=choice,
        unlabelled_titles=recipe["unlabelled"],
        config=config,
        comparison=comparison,
        reused=student.reused,
    )
