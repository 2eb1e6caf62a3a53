"""Typed configuration for every hyperparameter and path (Pydantic).

Dagster assets wrap these in ``dg.Config`` so the launchpad shows each field with its default; the CLI
builds them from flags. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The seed project's dataset at its public release (Zenodo record 4561253).
WELFAKE_URL = "https://zenodo.org/records/4561253/files/WELFake_Dataset.csv"
SOURCES_ENV = "FAKENEWS_SOURCES"


def default_sources() -> list[str]:
    """``FAKENEWS_SOURCES`` (comma-separated URIs) when set, else the public WELFake release."""
    raw = os.environ.get(SOURCES_ENV, "")
    return parse_sources(raw) or [WELFAKE_URL]


def parse_sources(raw: str | list[str]) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else raw
    return [item.strip() for item in items if item and item.strip()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    sources: list[str] = Field(default_factory=default_sources, description="URIs: local paths, http(s)://, gs://")
    val_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of deduplicated rows for validation (early stopping, threshold)"
    )
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of deduplicated rows for the frozen test split")
    seed: int = Field(42, description="Seed of the sample and the split")
    max_rows: int | None = Field(None, gt=0, description="Stratified sample of at most this many rows (for quick runs)")

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value):
        return parse_sources(value)


class ValidationConfig(_Strict):
    min_rows: int = Field(20, ge=1, description="Fewest rows a dataset may have")
    max_dropped_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Largest share of a source's rows that may be dropped while reading it (e.g. empty titles)",
    )
    min_title_chars: int = Field(3, ge=1, description="Shortest acceptable title (characters)")
    max_title_chars: int = Field(1000, ge=10, description="Longest acceptable title (characters)")
    max_title_length_violations: float = Field(
        0.01, ge=0, le=1, description="Fraction of titles allowed outside the length bounds"
    )
    max_duplicate_rate: float = Field(
        0.25, ge=0, le=1, description="Largest fraction of rows whose normalised title repeats"
    )
    min_fake_fraction: float = Field(0.05, ge=0, le=1, description="Smallest acceptable share of fake (label 1) rows")
    max_fake_fraction: float = Field(0.95, ge=0, le=1, description="Largest acceptable share of fake (label 1) rows")


class ModelConfig(_Strict):
    encoder: str | None = Field(None, description="HF hub id or local folder; None = packaged all-MiniLM-L6-v2")
    max_length: int = Field(48, ge=8, le=512, description="Token budget per headline")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="Sentence vector: mean of token vectors, or the [CLS] token"
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the classification head")
    encoder_layers: int | None = Field(
        None, ge=1, description="Keep only the encoder's first N transformer layers (a distilled student); None = all"
    )


class TrainConfig(_Strict):
    epochs: int = Field(3, ge=1, description="Most passes over the train split (early stopping may end sooner)")
    batch_size: int = Field(32, ge=1, description="Headlines per training step")
    learning_rate: float = Field(8e-5, gt=0, description="AdamW peak learning rate of the encoder")
    head_learning_rate: float = Field(1e-3, gt=0, description="AdamW peak learning rate of the classification head")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and LayerNorm)")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps with linear warm-up, then linear decay")
    rdrop_alpha: float = Field(
        3.0,
        ge=0,
        description="R-Drop: weight of the KL term between two dropout passes of each row (0 = plain cross-entropy, one pass)",
    )
    class_weighting: Literal["balanced", "none"] = Field(
        "balanced", description="Loss weights inverse to class frequency, or none"
    )
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto = bf16-mixed on CUDA and on CPUs with bf16 support, else 32-true"
    )
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu")
    devices: int = Field(
        1,
        ge=1,
        description="Devices (one process each) per node; above 1 trains data-parallel (DDP). batch_size stays the "
        "global batch: each process takes batch_size / (devices x num_nodes) rows of every step",
    )
    num_nodes: int = Field(1, ge=1, description="Machines taking part in data-parallel training")
    strategy: Literal["auto", "ddp_spawn", "ddp", "ddp_fork"] = Field(
        "auto",
        description="How several processes start: auto = ddp_spawn (fresh processes running only the training, "
        "safe inside Dagster and tests); ddp = each process runs the launching command (torchrun, SLURM); "
        "ddp_fork = forked processes (no pickling; unsafe in threaded hosts). Ignored on one device",
    )
    early_stopping_patience: int = Field(
        2, ge=1, description="Validations without a better val ROC-AUC before stopping"
    )
    max_steps: int = Field(-1, description="-1 = run all epochs; a small number for smoke runs")
    val_check_interval: float = Field(1.0, gt=0, le=1.0, description="Validate every this fraction of an epoch")
    seed: int = Field(42, description="Seed of initialisation, shuffling and dropout")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; None = all cores")
    progress_bar: bool = Field(True, description="Show a training progress bar (in the run's stderr log)")
    lexical_blend: bool = Field(
        True,
        description="Blend in a TF-IDF logistic regression over case-kept word and char n-grams and word shapes (weights fitted on val)",
    )

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    @model_validator(mode="after")
    def _batch_splits_evenly(self):
        if self.batch_size % (self.devices * self.num_nodes):
            raise ValueError(
                f"batch_size {self.batch_size} does not split evenly over {self.devices * self.num_nodes} processes "
                "(devices x num_nodes)"
            )
        return self


class QuantizeConfig(_Strict):
    variants: list[Literal["int8", "bf16", "pruned", "pruned_int8"]] = Field(
        default_factory=lambda: ["int8", "bf16"],
        description="Serving variants to build: int8, bf16, pruned (heads and FFN neurons removed, fp32), "
        "pruned_int8 (pruned, then int8)",
    )
    max_accuracy_drop: float = Field(0.01, ge=0, le=1, description="Largest accuracy loss vs fp32 (fraction)")
    min_agreement: float = Field(0.97, ge=0, le=1, description="Smallest share of identical predictions vs fp32")
    smoothing_alpha: float | None = Field(
        0.8,
        ge=0,
        le=1,
        description="int8: SmoothQuant migration strength, calibrated on the bundle's sample of train titles (None = plain dynamic int8)",
    )
    prune_head_share: float = Field(
        0.5, ge=0, lt=1, description="pruned: share of all attention heads removed (lowest importance first)"
    )
    prune_neuron_share: float = Field(
        0.5, ge=0, lt=1, description="pruned: share of all feed-forward neurons removed (lowest importance first)"
    )
    prune_recovery_steps: int = Field(
        40, ge=0, description="pruned: steps of recovery fine-tuning towards the unpruned model's output (0 = none)"
    )
    prune_learning_rate: float = Field(1e-4, gt=0, description="pruned: AdamW learning rate of the recovery")
    prune_batch_size: int = Field(32, ge=1, description="pruned: titles per importance and recovery batch")


class PredictConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    max_title_chars: int = Field(1000, ge=1, description="Longer headlines are truncated to this many characters")
    max_batch: int = Field(10_000, ge=1, description="Most headlines one call may classify")
    trace: bool = Field(
        False,
        description="Run a TorchScript trace of the fp32/int8 model (checked against eager): less Python per pass, for serving",
    )


class ServeConfig(_Strict):
    """Limits and knobs of the HTTP API (``fakenews serve``). Requests over a limit are rejected with a
    4xx naming the limit, never truncated: a caller must know that its input was not read whole."""

    host: str = Field("127.0.0.1", description="Bind address; 127.0.0.1 keeps the API off the network")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port)")
    max_batch: int = Field(256, ge=1, description="Most headlines per request (JSON list or CSV rows): 413 above")
    max_title_chars: int = Field(1000, ge=1, description="Longest headline accepted: 422 above")
    max_upload_bytes: int = Field(
        2_000_000, ge=1024, description="Largest request body (JSON or CSV upload): 413 above"
    )
    reload_check_s: float = Field(1.0, gt=0, description="How often the production link is checked for a new champion")
    torch_threads: int | None = Field(
        1,
        ge=1,
        description="torch threads per forward pass; 1 gives the best latency under concurrent load (None = torch default)",
    )
    workers: int | None = Field(
        None,
        ge=1,
        description="Model passes run in parallel (shared weights); None = usable cores / torch_threads, at most 8",
    )
    trace_model: bool = Field(
        True,
        description="Serve a TorchScript trace of the model (checked against the eager model at load; about 1.5 ms less per pass)",
    )
    merge_rows: int = Field(32, ge=1, description="Most headlines from queued requests merged into one forward pass")
    log_queue_rows: int = Field(
        20_000, ge=1, description="Prediction rows buffered for the log writer before requests wait"
    )
    log_batch_rows: int = Field(1_000, ge=1, description="Most rows the log writer inserts in one transaction")
    allowed_hosts: list[str] | None = Field(
        None,
        description="Host names requests may use (name or name:port; * = any); None = the bind address, localhost "
        "and 127.0.0.1 on the server's port. Other Host headers get 400 (DNS rebinding)",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value):
        if isinstance(value, str):
            value = value.split(",")
        if value is None:
            return None
        from fakenews_ml.serving.guards import ANY_HOST, parse_host

        entries = [str(entry).strip().lower() for entry in value if str(entry).strip()]
        bad = [entry for entry in entries if entry != ANY_HOST and parse_host(entry) is None]
        if bad:
            raise ValueError(f"not a host name or host:port: {bad}")
        if not entries:
            raise ValueError("give at least one host (or * for any)")
        return entries


class PipelineConfig(_Strict):
    """Everything ``fakenews train`` needs, in one object."""

    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


class GateConfig(_Strict):
    """The champion/challenger gate: a challenger is promoted only if, on the same frozen test split, its
    ``metric`` is at least the champion's minus ``tolerance``."""

    metric: Literal["macro_f1", "roc_auc", "pr_auc", "accuracy", "f1_fake"] = Field(
        "macro_f1", description="Test-split metric the gate compares (higher is better)"
    )
    tolerance: float = Field(
        0.0, ge=0, le=1, description="How much lower than the champion's the challenger's metric may be"
    )


class ProfileConfig(_Strict):
    """The reference profile: a seeded sample of titles with the production model's view of them. By
    default the validation split: the model has not fitted those rows, so its confidence there is what
    new traffic from the same distribution looks like (on train rows it is over-confident)."""

    sample_size: int = Field(2000, ge=10, description="Titles kept in the profile (all when fewer)")
    split: Literal["train", "val"] = Field(
        "val", description="Split to profile: val (rows the model never fitted) or train"
    )
    seed: int = Field(42, description="Seed of the sample")


class QualityBounds(_Strict):
    """When the live quality of a day (the traffic people labelled) is judged, and what fails it."""

    min_labelled_rows: int = Field(
        30, ge=1, description="Labelled predictions a day needs before its live quality is judged"
    )
    min_macro_f1: float = Field(
        0.6, ge=0, le=1, description="The live quality check warns when the day's macro-F1 falls below this"
    )


class DriftConfig(_Strict):
    """How a window of traffic is compared with the reference profile, and when the drift check fails.

    The check fails when the share of drifted feature columns reaches ``drift_share`` or when the
    embedding drift score (ROC AUC of a domain classifier telling reference from window embeddings,
    cross-validated) exceeds its threshold. Both domain-classifier AUCs (title text, embeddings) must also
    be significant at ``auc_alpha``, which raises their thresholds for small windows. Defaults are
    calibrated by ``bench/drift_detection.py`` on real data (FakeNewsNet held-out windows vs COVID posts)."""

    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted feature columns that fails the check")
    num_method: str = Field(
        "wasserstein", description="Evidently stattest for title_length, word_count, prob_fake, confidence"
    )
    num_threshold: float = Field(
        0.2,
        gt=0,
        description="Drift when the normed Wasserstein distance reaches this (same-distribution 500-row windows: at most 0.17)",
    )
    cat_method: str = Field("jensenshannon", description="Evidently stattest for predicted_label")
    cat_threshold: float = Field(0.1, gt=0, description="Drift when the Jensen-Shannon distance reaches this")
    text_method: str = Field(
        "abs_text_content_drift", description="Evidently text drift (TF-IDF domain classifier ROC AUC)"
    )
    text_threshold: float = Field(
        0.55, gt=0, lt=1, description="Drift when the title domain classifier's ROC AUC exceeds this"
    )
    per_feature_threshold: dict[str, float] = Field(default_factory=dict, description="Overrides by column name")
    embedding_method: Literal["domain_classifier"] = "domain_classifier"
    embedding_threshold: float = Field(
        0.55, gt=0.5, lt=1, description="Drift when the embedding domain classifier's ROC AUC exceeds this"
    )
    auc_alpha: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="Domain-classifier AUCs must also be this significant (raises their thresholds for small windows)",
    )
    embedding_folds: int = Field(
        5, ge=2, le=20, description="Cross-validation folds of the embedding domain classifier"
    )
    embedding_pca_components: int | None = Field(
        64, ge=2, description="Embeddings reduced to this many PCA components first (None = all)"
    )
    min_current_rows: int = Field(
        200, ge=2, description="Smaller windows are refused: too few rows for the calibrated thresholds"
    )
    min_reference_rows: int = Field(200, ge=2)
    max_reference_rows: int = Field(5000, ge=2, description="Larger profiles are sampled down (seeded)")
    max_current_rows: int = Field(5000, ge=2, description="Larger windows are sampled down (seeded)")
    require_same_model: bool = Field(True, description="Refuse to compare embeddings made by two different models")
    seed: int = 0


class SearchConfig(_Strict):
    """The hyperparameter search: its budget, each trial's short training and the search space. A parameter
    is searched between its ``_min`` and ``_max`` (equal bounds fix it). Trials are compared on the
    validation ROC-AUC, the metric early stopping and checkpointing watch. The defaults fit a 2-core CPU (a few
    minutes per trial with the packaged encoder; the time budget ends the study within half an hour)."""

    n_trials: int = Field(
        8, ge=1, description="Trials the study holds when done (finished or pruned); more continues the same study"
    )
    timeout_minutes: float | None = Field(
        30.0, gt=0, description="No new trial starts after this long (a running one finishes); None = no time budget"
    )
    train_rows: int = Field(1000, ge=8, description="Stratified, seeded sample of the train split each trial trains on")
    val_rows: int | None = Field(
        500, ge=8, description="Stratified, seeded sample of the val split each trial is scored on (None = all)"
    )
    epochs: int = Field(2, ge=1, description="Passes over the sample per trial; the pruner compares trials after each")
    max_steps: int = Field(
        200,
        ge=1,
        description="Most training steps per trial (a cap on the epochs; an epoch it cuts short is not validated)",
    )
    startup_trials: int = Field(4, ge=1, description="Random trials before the TPE sampler models the space")
    pruner_startup_trials: int = Field(
        2, ge=0, description="Trials that must finish before the median pruner may stop one"
    )
    pruner_warmup_epochs: int = Field(0, ge=0, description="Epochs a trial runs before it may be pruned")
    seed: int = Field(42, description="Seed of the samples, the sampler and each trial's training")
    learning_rate_min: float = Field(1e-5, gt=0, description="Encoder learning rate, lower bound (log scale)")
    learning_rate_max: float = Field(2e-4, gt=0, description="Encoder learning rate, upper bound (log scale)")
    head_learning_rate_min: float = Field(1e-4, gt=0, description="Head learning rate, lower bound (log scale)")
    head_learning_rate_max: float = Field(5e-3, gt=0, description="Head learning rate, upper bound (log scale)")
    dropout_min: float = Field(0.0, ge=0, lt=1, description="Dropout before the head, lower bound")
    dropout_max: float = Field(0.3, ge=0, lt=1, description="Dropout before the head, upper bound")
    rdrop_alpha_min: float = Field(0.0, ge=0, description="R-Drop weight, lower bound")
    rdrop_alpha_max: float = Field(5.0, ge=0, description="R-Drop weight, upper bound")
    weight_decay_min: float = Field(0.0, ge=0, description="AdamW weight decay, lower bound")
    weight_decay_max: float = Field(0.1, ge=0, description="AdamW weight decay, upper bound")
    batch_sizes: list[int] = Field(default_factory=lambda: [16, 32], description="Batch sizes to choose from")

    @model_validator(mode="after")
    def _bounds_in_order(self):
        for name in ("learning_rate", "head_learning_rate", "dropout", "rdrop_alpha", "weight_decay"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low > high:
                raise ValueError(f"{name}_min ({low}) is above {name}_max ({high})")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"batch_sizes must be positive integers, got {self.batch_sizes}")
        return self


class HyperparameterChoice(_Strict):
    """Where trained_model's hyperparameters come from."""

    use_best_hyperparameters: bool = Field(
        False,
        description="Train with the best trial of the latest hyperparameter_search (its learning rates, dropout, "
        "R-Drop alpha, weight decay and batch size replace these values)",
    )


class DistillConfig(_Strict):
    """A student distilled from the trained (teacher) bundle: fewer encoder layers, trained on the teacher's
    blended probabilities (softened by ``temperature``) and the hard labels, then served instead of the teacher
    when it is within the quality bounds on the frozen test split and faster."""

    student_layers: int | None = Field(
        None,
        ge=1,
        description="Encoder layers the student keeps (the teacher's first N); None = half the teacher's "
        "(3 of all-MiniLM-L6-v2's 6)",
    )
    init_from: Literal["teacher", "pretrained"] = Field(
        "teacher",
        description="Start the student from the fine-tuned teacher's embeddings, first layers and head, or from "
        "the pretrained encoder's first layers",
    )
    lexical: Literal["auto", "own", "none"] = Field(
        "auto",
        description="The student's TF-IDF half: its own (fitted like the teacher's), none, or auto = whichever gives "
        "the better validation ROC-AUC",
    )
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of the soft targets (teacher and student)")
    soft_weight: float = Field(
        0.7, ge=0, description="Weight of the soft term: KL(teacher || student) at the temperature, times T^2"
    )
    hard_weight: float = Field(0.3, ge=0, description="Weight of the cross-entropy on the hard labels")
    prediction_log_titles: int = Field(
        0,
        ge=0,
        description="Also train on up to this many unlabelled titles from the prediction log, labelled by the "
        "teacher (soft term only); 0 = off",
    )
    max_macro_f1_drop: float = Field(
        0.01,
        ge=-1,
        le=1,
        description="Student (served variant) test macro-F1 at most this far below the teacher's (0.01 = 1 point)",
    )
    max_roc_auc_drop: float = Field(
        0.01, ge=-1, le=1, description="Student (served variant) test ROC-AUC at most this far below the teacher's"
    )
    min_speedup: float = Field(
        1.0,
        gt=0,
        description="Served only when the student's served variant classifies more than this many times the "
        "headlines per second of the teacher's (measured in one process, alternating)",
    )
    speed_rows: int = Field(2000, ge=16, description="Test headlines timed per speed round")
    speed_rounds: int = Field(3, ge=1, description="Alternating timing rounds per model (the best round counts)")

    @model_validator(mode="after")
    def _some_loss(self):
        if self.soft_weight + self.hard_weight <= 0:
            raise ValueError("soft_weight and hard_weight are both 0: the student would learn nothing")
        return self
