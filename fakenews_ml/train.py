"""Fine-tune the classifier with Lightning and write a model bundle.

``train_model`` is the one training entry point (CLI and Dagster asset alike): tokenized splits in, a
bundle out, with the decision threshold tuned on the validation split and metrics on the test split.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from fakenews_ml.atomic import write_json
from fakenews_ml.bundle import CALIBRATION_TABLE, HELDOUT_TABLE, save_bundle
from fakenews_ml.config import ModelConfig, TrainConfig
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.device import describe_device, resolve_precision
from fakenews_ml.environment import home_path
from fakenews_ml.metrics import compute_metrics, save_plots, tune_threshold
from fakenews_ml.model.classifier import HeadlineClassifier
from fakenews_ml.model.datamodule import NewsDataModule
from fakenews_ml.model.domain import MAX_FIT_ROWS, DomainProfile, fit_domain
from fakenews_ml.model.encoder import encoder_label
from fakenews_ml.model.inference import embed_rows, predict_probs
from fakenews_ml.model.lexical import blend, cross_fit, fit_blend
from fakenews_ml.model.lightning_module import ClassifierModule, SoftTargets, balanced_class_weights

CALIBRATION_ROWS = 512
MONITOR = "val_roc_auc"  # threshold-free, robust to the class imbalance


@dataclass
class TrainResult:
    bundle_path: Path
    threshold: float
    val_metrics: dict
    test_metrics: dict
    history: list[dict]
    precision: str
    device: dict
    seconds: float
    steps: int
    samples_per_second: float
    plots: dict[str, Path] = field(default_factory=dict)


class EpochHistory(Callback):
    """Keeps each validation epoch's logged metrics, whatever logger is in use. With ``record`` set, rank 0
    also writes them there when the fit ends, with the step count and the best checkpoint's score: processes
    started by ``ddp_spawn`` do not hand their callbacks' state back to the launching process."""

    def __init__(self, record: Path | None = None):
        self.rows: list[dict] = []
        self.record = record

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        self.rows.append({"epoch": trainer.current_epoch, "step": trainer.global_step, **row})

    def on_fit_end(self, trainer, pl_module):
        if self.record is not None and trainer.is_global_zero:
            score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
            write_json(
                self.record,
                {
                    "rows": self.rows,
                    "steps": int(trainer.global_step),
                    "best_score": float(score) if score is not None else None,
                },
            )


def strategy_for(train_config: TrainConfig) -> str:
    """Lightning's strategy: its own choice on one device; data-parallel processes otherwise (``auto`` =
    ``ddp_spawn``: fresh processes that run only the fit, so a Dagster step or a test is never re-executed)."""
    if train_config.world_size == 1:
        return "auto"
    return "ddp_spawn" if train_config.strategy == "auto" else train_config.strategy


def train_model(
    tokenized: dict[str, TokenizedSplit],
    tokenizer,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: Path | str,
    *,
    lineage: dict | None = None,
    logger=None,
    work_dir: Path | None = None,
    heldout: pd.DataFrame | None = None,
    titles: dict[str, list[str]] | None = None,
    callbacks: list[Callback] | None = None,
    soft_targets: SoftTargets | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
    lexical_if_better: bool = False,
) -> TrainResult:
    """Fit on ``train``, early-stop and checkpoint on ``val``, evaluate on ``test``, write the bundle
    (with ``heldout``, the frozen test rows, as ``heldout_test.csv`` when given). With ``titles`` (each
    split's headlines, in the tokenized rows' order) the lexical model is fitted and blended in, and a
    seeded sample of train titles is kept for calibrating the int8 variant. ``callbacks`` join the trainer's
    own (a hyperparameter trial's pruning callback).

    A distilled student comes through here too: ``soft_targets`` (the teacher's probabilities per train row)
    change the loss, ``initial_state`` (the teacher's weights) starts every tensor the student has from the
    teacher's, and ``lexical_if_better`` keeps the lexical half only when the blend's validation ROC-AUC is
    higher than the transformer's alone."""
    started = time.perf_counter()
    L.seed_everything(train_config.seed, workers=True, verbose=False)
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    work_dir = Path(work_dir or home_path("runs", time.strftime("%Y%m%d-%H%M%S")))
    work_dir.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(train_config.precision, train_config.accelerator)

    data = NewsDataModule(tokenized, train_config.batch_size, tokenizer.pad_token_id, seed=train_config.seed)
    weights = balanced_class_weights(data.class_counts()) if train_config.class_weighting == "balanced" else None
    network = HeadlineClassifier.from_pretrained(model_config)
    if initial_state is not None:
        start_from(network, initial_state)
    module = ClassifierModule(network, train_config, weights, soft_targets)

    fit_record = work_dir / "fit_record.json"
    fit_record.unlink(missing_ok=True)
    history = EpochHistory(fit_record)
    checkpoint = ModelCheckpoint(
        dirpath=work_dir / "checkpoints",
        monitor=MONITOR,
        mode="max",
        save_top_k=1,
        save_weights_only=True,
        save_on_train_epoch_end=False,
    )
    trainer = L.Trainer(
        accelerator=train_config.accelerator,
        devices=train_config.devices,
        num_nodes=train_config.num_nodes,
        strategy=strategy_for(train_config),
        use_distributed_sampler=False,  # NewsDataModule shares each global batch out itself
        precision=precision,
        max_epochs=train_config.epochs,
        max_steps=train_config.max_steps,
        val_check_interval=train_config.val_check_interval,
        callbacks=[
            EarlyStopping(
                MONITOR, mode="max", patience=train_config.early_stopping_patience, check_on_train_epoch_end=False
            ),
            checkpoint,
            history,
            *(callbacks or []),
        ],
        logger=logger if logger is not None else L.loggers.CSVLogger(work_dir, name="logs"),
        enable_progress_bar=train_config.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=20,
        default_root_dir=work_dir,
    )
    fit_started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    fit_seconds = time.perf_counter() - fit_started
    if trainer.global_rank != 0:
        # `ddp`: every process runs the launching command; only rank 0 goes on to evaluate and write the
        # bundle, the others stop here so nothing after training runs (or writes) twice.
        raise SystemExit(0)
    record = json.loads(fit_record.read_text())  # rank 0's view, also when its process was spawned
    history.rows, best_score = record["rows"], record["best_score"]
    if checkpoint.best_model_path:  # our own file from this run; tensors only
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    model = module.model.cpu().float().eval()

    probs = {
        name: predict_probs(model, split, tokenizer.pad_token_id)
        for name, split in tokenized.items()
        if name != "train"
    }
    lexical, blend_weights, components, lexical_choice = None, None, {}, None
    if train_config.lexical_blend and titles is not None:
        transformer_probs = probs
        lexical, blend_weights, probs, components = _blend_in_lexical(tokenized, titles, probs)
        if lexical_if_better:
            lexical_choice = _lexical_choice(tokenized["val"].labels, transformer_probs["val"], probs["val"])
            if not lexical_choice["kept"]:
                lexical, blend_weights, probs = None, None, transformer_probs
    threshold = tune_threshold(tokenized["val"].labels, probs["val"])
    domain = domain_profile(model, tokenized, tokenizer.pad_token_id, train_config.seed)
    val_metrics = compute_metrics(tokenized["val"].labels, probs["val"], threshold)
    test_metrics, plots = {}, {}
    if "test" in tokenized:
        test_metrics = compute_metrics(tokenized["test"].labels, probs["test"], threshold)
        plots = save_plots(tokenized["test"].labels, probs["test"], threshold, work_dir / "plots")

    steps = int(record["steps"])
    seen = steps * train_config.batch_size  # the global batch, whatever the number of processes
    device = describe_device()
    bundle_path = save_bundle(
        out_dir,
        model,
        tokenizer,
        model.encoder.config,
        model_config,
        threshold=threshold,
        metrics={
            "val": val_metrics,
            "test": test_metrics,
            "best_epoch_score": best_score if best_score is not None and np.isfinite(best_score) else None,
            "components": components,
            **({"lexical_choice": lexical_choice} if lexical_choice else {}),
        },
        lineage={"encoder": encoder_label(model_config.encoder), **(lineage or {})},
        train_config=train_config.model_dump(),
        plots=plots,
        lexical=lexical,
        blend_weights=blend_weights,
        domain=domain,
        tables=_bundle_tables(heldout, titles, train_config.seed),
        extra={
            "training": {
                "history": history.rows,
                "precision": precision,
                "device": device,
                "processes": train_config.world_size,
                "strategy": strategy_for(train_config),
                "steps": steps,
                "fit_seconds": round(fit_seconds, 1),
                "samples_per_second": round(seen / fit_seconds, 1),
            }
        },
    )
    shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
    return TrainResult(
        bundle_path=bundle_path,
        threshold=threshold,
        val_metrics=val_metrics,
        test_metrics=test_metrics,
        history=history.rows,
        precision=precision,
        device=device,
        seconds=time.perf_counter() - started,
        steps=steps,
        samples_per_second=seen / fit_seconds if fit_seconds else 0.0,
        plots={name: bundle_path / "plots" / Path(p).name for name, p in plots.items()},
    )


def start_from(model: HeadlineClassifier, state: dict[str, torch.Tensor]) -> None:
    """Load every tensor ``model`` has from ``state`` (a larger model of the same family: a student takes its
    teacher's embeddings, first layers and head); a tensor missing or of another shape is a ValueError."""
    own = model.state_dict()
    unfit = [name for name, tensor in own.items() if name not in state or state[name].shape != tensor.shape]
    if unfit:
        raise ValueError(f"the initial weights do not fit the model ({len(unfit)} tensors, e.g. {unfit[:3]})")
    model.load_state_dict({name: state[name].detach().clone().float() for name in own})


def _lexical_choice(labels: np.ndarray, transformer: np.ndarray, blended: np.ndarray) -> dict:
    """Keep the lexical half only if the blend ranks validation rows better than the transformer alone."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(labels)) < 2:
        return {"kept": True, "reason": "validation split has one class: kept as configured"}
    alone, with_lexical = float(roc_auc_score(labels, transformer)), float(roc_auc_score(labels, blended))
    return {
        "kept": with_lexical > alone,
        "val_roc_auc_transformer": alone,
        "val_roc_auc_blend": with_lexical,
    }


def domain_profile(model, tokenized: dict[str, TokenizedSplit], pad_token_id: int, seed: int) -> DomainProfile:
    """The out-of-domain profile (``model.domain``): fitted on a seeded sample of the train split's
    embeddings, its threshold calibrated on the val split's."""
    train = tokenized["train"]
    if len(train) > MAX_FIT_ROWS:
        train = train.take(np.sort(np.random.default_rng(seed).choice(len(train), MAX_FIT_ROWS, replace=False)))
    return fit_domain(
        embed_rows(model, train, pad_token_id), embed_rows(model, tokenized["val"], pad_token_id), seed=seed
    )


def _blend_in_lexical(tokenized: dict[str, TokenizedSplit], titles: dict[str, list[str]], probs: dict[str, np.ndarray]):
    """Fit the TF-IDF model on train + val (cross-fitted, so its val scores are out-of-fold), the blend on
    val; returns it with the blended probabilities and each half's ROC-AUC (so the metrics show what the
    blend adds)."""
    from sklearn.metrics import roc_auc_score

    for name, split in tokenized.items():
        if len(titles[name]) != len(split):
            raise ValueError(f"{name}: {len(titles[name])} titles for {len(split)} tokenized rows")
    lexical, val_logits = cross_fit(titles["train"], tokenized["train"].labels, titles["val"], tokenized["val"].labels)
    lexical_logits = {name: val_logits if name == "val" else lexical.decision(titles[name]) for name in probs}
    weights = fit_blend(probs["val"], lexical_logits["val"], tokenized["val"].labels)
    blended = {name: blend(probs[name], lexical_logits[name], weights) for name in probs}
    components = {
        name: {
            "transformer_roc_auc": float(roc_auc_score(tokenized[name].labels, probs[name])),
            "lexical_roc_auc": float(roc_auc_score(tokenized[name].labels, lexical_logits[name])),
        }
        for name in probs
        if len(np.unique(tokenized[name].labels)) == 2
    }
    return lexical, weights, blended, components


def _bundle_tables(
    heldout: pd.DataFrame | None, titles: dict[str, list[str]] | None, seed: int
) -> dict[str, pd.DataFrame]:
    tables = {}
    if heldout is not None:
        tables[HELDOUT_TABLE] = heldout[["id", "title", "label"]]
    if titles is not None and titles.get("train"):
        train = pd.Series(titles["train"], name="title")
        tables[CALIBRATION_TABLE] = train.sample(min(CALIBRATION_ROWS, len(train)), random_state=seed).to_frame()
    return tables
