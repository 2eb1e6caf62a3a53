"""The typed hand-offs between stages: each stage returns one of these, and the next stage takes it.

A manifest is small and JSON-able: what a step wrote (as locations in the artifact store, never absolute
paths), the fingerprints that key the next step's cache, the settings and code version it was made with, and
the summary numbers people look at. The Dagster IO manager stores them as JSON (``dump_manifest`` /
``load_manifest``: no pickles), and every artifact folder keeps its own ``manifest.json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from fakenews_ml.config import (
    DistillConfig,
    DriftConfig,
    GateConfig,
    ModelConfig,
    ProfileConfig,
    QualityBounds,
    SearchConfig,
    ValidationConfig,
)

# A relative POSIX path inside the artifact store (see fakenews_ml.store), checked on every load.
Location = Annotated[str, AfterValidator(lambda value: _check_location(value))]


def _check_location(value: str) -> str:
    from fakenews_ml.store import LocationError, check_location

    try:
        return check_location(value)
    except LocationError as problem:  # pydantic turns ValueErrors into its validation errors
        raise ValueError(str(problem)) from None


class Record(BaseModel):
    """A nested part of a manifest: strict, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Manifest(Record):
    """A stage's output. ``stage`` tells the kind (the JSON discriminator); ``code_version`` is the stage's."""

    stage: str
    code_version: str


# ----- data ---------------------------------------------------------------------------------------------


class SourceRecord(Record):
    uri: str
    sha256: str


class LabelCounts(Record):
    real: int = 0
    fake: int = 0

    @property
    def fake_share(self) -> float:
        total = self.real + self.fake
        return self.fake / total if total else 0.0


class TitleLengths(Record):
    min: int
    median: float
    max: int


class FrameFile(Record):
    """A canonical news frame (id, title, text, label, source) stored as parquet, with its summary."""

    location: Location
    rows: int
    fingerprint: str  # ids and labels: what a split is made of
    digest: str  # every cell: any change in what was written
    label_counts: LabelCounts
    title_chars: TitleLengths | None = None


class SourceRead(Record):
    """What reading one source kept and dropped (and why)."""

    uri: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int]  # reason -> rows

    @property
    def dropped_share(self) -> float:
        return (self.rows_read - self.rows_kept) / self.rows_read if self.rows_read else 0.0


class RawNews(Manifest):
    stage: Literal["raw_news"] = "raw_news"
    key: str
    news: FrameFile
    sources: list[SourceRecord]
    read: list[SourceRead]
    data_version: str  # the sources' sha256, hashed
    rows_by_source: dict[str, int]


class FeedbackLabels(Manifest):
    stage: Literal["feedback_labels"] = "feedback_labels"
    key: str
    news: FrameFile  # the rows that pass the row-level checks: what the merge may take
    validation_config: ValidationConfig
    rows_by_source: dict[str, int]
    quarantine: FrameFile | None = None  # the rows that fail them, kept with their reason, never merged
    quarantined_by_reason: dict[str, int] = Field(default_factory=dict)


class FeedbackMerge(Record):
    """What validated_news took from the feedback labels."""

    rows: int = 0
    replaced_rows: int = 0
    digest: str | None = None
    key: str | None = None


class ValidatedNews(Manifest):
    stage: Literal["validated_news"] = "validated_news"
    key: str
    news: FrameFile
    validation_config: ValidationConfig
    raw_digest: str
    sources: list[SourceRecord]
    read: list[SourceRead]  # what reading each source dropped: the suite bounds it
    feedback: FeedbackMerge = FeedbackMerge()
    rows_by_source: dict[str, int]


class NewsSplits(Manifest):
    stage: Literal["news_splits"] = "news_splits"
    key: str
    splits: dict[str, FrameFile]  # train, val, test
    fingerprint: str  # of the three split digests
    duplicates_removed: int
    conflicting_labels_removed: int
    empty_titles_removed: int
    config: dict[str, Any]  # DataConfig without its sources
    validated_digest: str
    # carried along for the lineage of the bundles trained on these splits
    sources: list[SourceRecord]
    feedback: FeedbackMerge = FeedbackMerge()


class TokenizedFile(Record):
    location: Location
    rows: int
    mean_tokens: float
    max_tokens: int
    truncated_share: float


class TokenizedNews(Manifest):
    stage: Literal["tokenized_news"] = "tokenized_news"
    key: str
    fingerprint: str
    splits: dict[str, TokenizedFile]
    encoder: str | None  # as configured: None = the packaged default, else a hub id or a folder
    encoder_label: str
    max_length: int
    tokenizer_digest: str
    vocab_size: int
    splits_fingerprint: str


# ----- models -------------------------------------------------------------------------------------------


class Metrics(Record):
    """Held-out metrics at one decision threshold (``fakenews_ml.metrics.compute_metrics``)."""

    accuracy: float
    macro_f1: float
    f1_fake: float
    precision_fake: float
    recall_fake: float
    roc_auc: float | None
    pr_auc: float | None
    ece: float
    brier: float
    confusion_matrix: list[list[int]]
    n: int
    fake_rate: float
    threshold: float


class SplitMetrics(Record):
    val: Metrics | None = None
    test: Metrics | None = None


class TrainingSummary(Record):
    precision: str | None = None
    device: dict[str, Any] = Field(default_factory=dict)
    steps: int | None = None
    fit_seconds: float | None = None
    samples_per_second: float | None = None
    history: list[dict[str, float]] = Field(default_factory=list)


class TrainedModel(Manifest):
    stage: Literal["trained_model"] = "trained_model"
    bundle: Location
    version: str
    cache_key: str
    weights_sha256: str
    size_bytes: int
    threshold: float
    architecture: ModelConfig
    hyperparameters: dict[str, Any]  # the TrainConfig it was trained with
    metrics: SplitMetrics
    training: TrainingSummary
    plots: dict[str, Location]
    wandb_run: dict[str, Any] | None = None
    reused: bool = False
    seconds: float | None = None


class TrialRecord(Record):
    """One trial of a hyperparameter search, as the study's storage holds it."""

    number: int
    state: Literal["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
    value: float | None  # the objective (validation ROC-AUC); None unless complete
    params: dict[str, float | int]
    epochs_reported: int  # validations the pruner saw
    last_reported: float | None = None  # the last of them (where a pruned trial stopped)
    steps: int | None = None
    seconds: float | None = None
    wandb_run: str | None = None
    worker: str | None = None
    error: str | None = None


class HyperparameterSearch(Manifest):
    """An Optuna study over the training hyperparameters: where it is stored, its trials and the best one."""

    stage: Literal["hyperparameter_search"] = "hyperparameter_search"
    key: str  # of the study: the tokens, the search settings (not the budget), the compute, the code version
    study: str
    storage: str  # the study storage URL, credentials hidden
    folder: Location  # the plots and this manifest, for this state of the study
    objective: str
    config: SearchConfig
    tokenized_fingerprint: str
    splits_fingerprint: str
    train_rows: int
    val_rows: int
    best_trial: int
    best_value: float
    best_params: dict[str, float | int]
    trials: list[TrialRecord]
    complete: int
    pruned: int
    failed: int
    new_trials: int  # started by this materialization (0: the study already held its budget)
    importance: dict[str, float] = Field(default_factory=dict)
    plots: dict[str, Location] = Field(default_factory=dict)
    wandb_group: str | None = None
    seconds: float | None = None
    reused: bool = False


class ModelScore(Manifest):
    """A bundle's fp32 metrics on one test split (kept per bundle and split: never computed twice)."""

    stage: Literal["model_score"] = "model_score"
    key: str
    bundle: Location
    version: str
    test_digest: str
    metrics: Metrics
    plots: dict[str, Location]


class GateDecision(Record):
    metric: str
    tolerance: float
    challenger: float | None
    champion: float | None
    passed: bool
    margin: float | None
    reason: str


class ModelEvaluation(Manifest):
    stage: Literal["model_evaluation"] = "model_evaluation"
    key: str
    test_digest: str
    test_rows: int
    challenger: ModelScore
    champion: ModelScore | None
    champion_is_challenger: bool
    gate: GateDecision
    gate_config: GateConfig


class VariantParity(Record):
    """One quantized variant against fp32 on the same rows (``quantization.json``)."""

    accuracy_ref: float
    accuracy_variant: float
    accuracy_delta: float
    agreement: float
    max_abs_prob_diff: float
    mean_abs_prob_diff: float
    n: int
    threshold: float
    passed: bool
    size_bytes: int
    size_ratio: float
    rows_per_second: float
    speedup_vs_fp32: float
    location: str  # relative to the bundle: variants/<name>


class QuantizedModel(Manifest):
    stage: Literal["quantized_model"] = "quantized_model"
    bundle: Location
    version: str
    variants: dict[str, Location]
    variant_weights: dict[str, str]
    parity: dict[str, VariantParity]
    fp32_rows_per_second: float
    eval_rows: int
    int8_smoothing: dict[str, Any] | None
    pruning: dict[str, Any] | None = None  # settings, kept shapes and parameters of the pruned variants
    recommended: str
    serving: Location  # the folder the API loads: the recommended variant (or the fp32 bundle)
    passed: bool  # at least one variant within bounds: shippable
    all_passed: bool
    failed_variants: list[str]
    bounds: dict[str, float]
    reused: bool = False


class ServedSpeed(Record):
    """One model's served variant timed on the same test headlines, alternating with the other's."""

    variant: str
    rows_per_second: float
    rounds: list[float]  # rows/s of each round


class StudentComparison(Record):
    """The student's served variant against its teacher on the frozen test split, and the decision's bounds."""

    teacher: Metrics  # the teacher (fp32, blended) on the test split
    teacher_served: Metrics  # the teacher's served variant on the same rows
    student: Metrics  # the student's served variant (int8 when within its parity bounds)
    student_fp32: Metrics
    macro_f1_drop: float  # teacher - student, in [0, 1] units (0.01 = 1 point)
    roc_auc_drop: float | None
    max_macro_f1_drop: float
    max_roc_auc_drop: float
    within_bounds: bool
    teacher_speed: ServedSpeed
    student_speed: ServedSpeed
    speedup: float  # student rows/s / teacher rows/s
    min_speedup: float
    faster: bool
    test_rows: int
    test_digest: str
    reason: str


class TeacherRef(Record):
    bundle: Location
    version: str
    weights_sha256: str
    layers: int
    parameters: int


class DistilledModel(Manifest):
    """A student bundle (a normal bundle at models/<key>, its lineage naming its teacher), its quantized
    variants, and how it compares with the teacher."""

    stage: Literal["distilled_model"] = "distilled_model"
    student: TrainedModel  # the student's bundle, as any trained bundle is described
    quantized: QuantizedModel  # its serving variants and parity report
    teacher: TeacherRef
    layers: int
    parameters: int
    lexical: Literal["own", "none"]
    lexical_choice: dict[str, Any] | None  # what auto compared on val
    unlabelled_titles: int  # prediction-log titles the teacher labelled for it
    config: DistillConfig
    comparison: StudentComparison
    reused: bool = False


class StudentDecision(Record):
    """production_model's choice between the student's served variant and the teacher's, with both numbers."""

    serve_student: bool
    reason: str
    student_bundle: Location | None
    teacher_bundle: Location
    comparison: StudentComparison | None


class ProductionModel(Manifest):
    stage: Literal["production_model"] = "production_model"
    champion: Location
    version: str
    serving: Location
    serving_variant: str
    previous: Location | None
    promoted: bool
    reason: str
    gate: GateDecision
    served: Literal["teacher", "student"] = "teacher"
    student: StudentDecision | None = None


class ProfiledModel(Record):
    serving: Location
    version: str
    variant: str
    threshold: float


class ReferenceProfile(Manifest):
    stage: Literal["reference_profile"] = "reference_profile"
    key: str
    folder: Location
    rows: int
    embedding_dim: int
    model: ProfiledModel
    split: str
    split_digest: str
    config: ProfileConfig
    summary: dict[str, Any]


# ----- monitoring ---------------------------------------------------------------------------------------


class PredictionLogState(Record):
    predictions: int
    max_id: int
    first_prediction_at: str | None
    last_prediction_at: str | None
    feedback: int
    feedback_max_id: int
    data_version: str
    url: str  # credentials hidden


class VersionTraffic(Record):
    rows: int
    fake_rate: float
    mean_confidence: float


class DailyPredictions(Manifest):
    stage: Literal["daily_predictions"] = "daily_predictions"
    key: str
    day: str
    predictions: Location
    rows: int
    digest: str
    fake_rate: float | None
    mean_confidence: float | None
    mean_prob_fake: float | None
    by_model_version: dict[str, VersionTraffic]
    by_origin: dict[str, int]
    first_at: str | None
    last_at: str | None


class FeatureDrift(Record):
    column: str
    stattest: str
    score: float | None
    threshold: float | None
    drifted: bool


class EmbeddingDrift(Record):
    method: str
    score: float | None
    p_value: float | None
    threshold: float | None
    min_auc: float | None
    drifted: bool
    dims: int


class DriftReport(Manifest):
    stage: Literal["drift_report"] = "drift_report"
    partition: str
    key: str
    daily_digest: str
    reference_key: str
    reference_model_version: str  # the champion's version (the bundle's, whichever variant serves)
    rows: int
    min_current_rows: int
    config: DriftConfig
    model_variant: str | None = None  # the variant that served and was profiled (fp32 / bf16 / int8)
    status: Literal["ok", "drifted", "insufficient_data"]
    drifted: bool
    reason: str | None = None  # why there is no report (insufficient data)
    # the report itself (absent for insufficient data)
    reasons: list[str] = Field(default_factory=list)
    drift_share: float | None = None
    drift_share_threshold: float | None = None
    n_drifted_features: int | None = None
    n_features: int | None = None
    features: dict[str, FeatureDrift] = Field(default_factory=dict)
    embedding_drift: EmbeddingDrift | None = None
    n_reference: int | None = None
    n_current: int | None = None
    model_version: str | None = None
    seconds: float | None = None
    report: Location | None = None  # the day's folder: report.html, report.json, the plot
    html: Location | None = None
    json_report: Location | None = None
    plot: Location | None = None


class Quality(Record):
    """Served predictions against the labels people gave them (fake is the positive class)."""

    rows: int  # labelled predictions
    accuracy: float | None
    macro_f1: float | None
    confusion_matrix: list[list[int]]  # [[tn, fp], [fn, tp]]: rows are the labels, columns the predictions


class LiveQuality(Manifest):
    stage: Literal["live_quality"] = "live_quality"
    day: str
    digest: str  # of the labelled rows: the data version
    predictions: int  # every prediction logged that day
    overall: Quality
    by_model_version: dict[str, Quality]
    bounds: QualityBounds
    judged: bool  # enough labelled rows to judge (bounds.min_labelled_rows)
    passed: bool  # not judged, or macro-F1 at or above bounds.min_macro_f1


AnyManifest = Annotated[
    RawNews
    | FeedbackLabels
    | ValidatedNews
    | NewsSplits
    | TokenizedNews
    | TrainedModel
    | HyperparameterSearch
    | ModelScore
    | ModelEvaluation
    | QuantizedModel
    | DistilledModel
    | ProductionModel
    | ReferenceProfile
    | DailyPredictions
    | DriftReport
    | LiveQuality,
    Field(discriminator="stage"),
]
_ADAPTER: TypeAdapter = TypeAdapter(AnyManifest)


def dump_manifest(manifest: Manifest) -> str:
    return manifest.model_dump_json(indent=2)


def load_manifest(text: str | bytes) -> Manifest:
    """Any manifest from its JSON, typed by its ``stage``; a pydantic ValidationError for anything else."""
    return _ADAPTER.validate_json(text)
