"""Drift of a window of traffic against the reference profile, as an Evidently 0.7 report plus a verdict.

What is compared (feature frames from ``fakenews_ml.monitoring.reference``):

* ``title``: Evidently text drift: a TF-IDF domain classifier tries to tell window titles from reference
  titles; its held-out ROC AUC is the score.
* ``title_length``, ``word_count``, ``prob_fake``, ``confidence``: distribution drift (normed Wasserstein
  distance by default); ``predicted_label``: Jensen-Shannon distance.
* The model's own encoder embeddings: a domain classifier again, on the embeddings (standardised, PCA,
  logistic regression, k-fold cross-validated out-of-fold scores); its ROC AUC is the embedding drift score.

Why not Evidently's ``EmbeddingsDrift`` metric: it always fits a t-SNE of up to 2,500 + 2,500 rows for its
plot, which alone took over a minute for 2,500 rows on a 2-core machine (the budget is 60 s for 5,000 vs
5,000), and its classifier is an unscaled SGD scored on one 50/50 split. Here the classifier is
cross-validated (every row gets an out-of-fold score) and its per-row scores go into the Evidently report as
the column ``embedding_drift_score``, tested there with the registered stattest ``embedding_domain_auc``
(the ROC AUC of those scores, reference vs window): the HTML shows both score distributions and the JSON
holds the test, with the same threshold as the verdict.

A domain-classifier AUC is an effect size, not a p-value: it does not drift towards "significant" as windows
grow, and 0.5 means indistinguishable. Small windows make it noisy, so each AUC threshold is raised to the
AUC that indistinguishable samples of these sizes exceed with probability ``DriftConfig.auc_alpha`` (normal
approximation of the null, see ``null_auc_sd``) when that is higher: a drift flag needs a large effect *and*
significance.

The check fails (``DriftResult.drifted``) when the share of drifted feature columns reaches
``DriftConfig.drift_share`` or when the embedding AUC exceeds its (size-aware) threshold. Calibration on
real data, defaults and timings: ``bench/drift_detection.py``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fakenews_ml.atomic import atomic_path, write_text
from fakenews_ml.config import DriftConfig
from fakenews_ml.errors import InputError
from fakenews_ml.monitoring.reference import FEATURE_COLUMNS, embedding_matrix

NUMERICAL_FEATURES = ["title_length", "word_count", "prob_fake", "confidence"]
CATEGORICAL_FEATURES = ["predicted_label"]
TEXT_FEATURES = ["title"]
DRIFT_FEATURES = TEXT_FEATURES + NUMERICAL_FEATURES + CATEGORICAL_FEATURES
EMBEDDING_SCORE_COLUMN = "embedding_drift_score"
EMBEDDING_STATTEST = "embedding_domain_auc"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
LABEL_NAMES = {0: "real", 1: "fake"}


class DriftInputError(InputError, ValueError):
    """A window or profile that cannot be compared: empty, too small, wrong columns, another model."""


@dataclass
class FeatureDrift:
    column: str
    stattest: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class EmbeddingDrift:
    method: str
    score: float  # cross-validated ROC AUC of the domain classifier (0.5 = indistinguishable)
    p_value: float  # approximate, one-sided
    threshold: float  # the one applied: min_auc, raised for small windows (see auc_threshold)
    min_auc: float  # the configured DriftConfig.embedding_threshold
    drifted: bool
    dims: int  # dimensions the classifier saw (after PCA)


@dataclass
class DriftResult:
    drifted: bool
    drift_share: float
    drift_share_threshold: float
    features: dict[str, FeatureDrift]
    embedding: EmbeddingDrift
    n_reference: int
    n_current: int
    html_path: Path
    json_path: Path
    reasons: list[str] = field(default_factory=list)
    model_version: str | None = None
    seconds: float = 0.0

    @property
    def embedding_drift(self) -> float:
        return self.embedding.score

    @property
    def embedding_drifted(self) -> bool:
        return self.embedding.drifted

    def to_metadata(self) -> dict:
        """Plain JSON types only (no NaN): for Dagster metadata, logs and the report's JSON summary."""
        return _finite(
            {
                "drifted": self.drifted,
                "reasons": list(self.reasons),
                "drift_share": self.drift_share,
                "drift_share_threshold": self.drift_share_threshold,
                "n_drifted_features": sum(f.drifted for f in self.features.values()),
                "n_features": len(self.features),
                "features": {name: asdict(f) for name, f in self.features.items()},
                "embedding_drift": asdict(self.embedding),
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "model_version": self.model_version,
                "seconds": round(self.seconds, 2),
            }
        )


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# ----- embedding drift ----------------------------------------------------------------------------------


def embedding_domain_scores(
    reference: np.ndarray, current: np.ndarray, folds: int = 5, pca_components: int | None = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Out-of-fold P(row is from the window) for every reference and window row, the pooled ROC AUC, and
    the dimensions used.

    Standardisation and PCA are fitted on the pooled rows without their domain labels, so they leak
    nothing into the classifier's held-out scores. Classes are weighted: windows are often 10x smaller
    than the reference, and an unweighted classifier would learn to answer "reference"."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([reference, current]).astype(np.float64)
    y = np.r_[np.zeros(len(reference), np.int8), np.ones(len(current), np.int8)]
    x = StandardScaler().fit_transform(x)
    if pca_components and pca_components < x.shape[1]:
        x = PCA(n_components=min(pca_components, len(x) - 1), random_state=seed).fit_transform(x)
    folds = max(2, min(folds, int(min(len(reference), len(current)))))
    scores = np.empty(len(x))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500)
        clf.fit(x[train], y[train])
        scores[test] = clf.predict_proba(x[test])[:, 1]
    auc = float(roc_auc_score(y, scores))
    return scores[: len(reference)], scores[len(reference) :], auc, int(x.shape[1])


def null_auc_sd(n_reference: int, n_current: int) -> float:
    """Spread of a domain classifier's AUC when the two samples are indistinguishable: the Mann-Whitney sd
    of a 50% held-out split (``n/2`` rows of each side). That is exact for Evidently's text classifier
    (one 50/50 split); the cross-validated embedding AUC spreads as much, not less, although every row is
    scored (fold models share training rows): 1.3-1.4x the all-rows Mann-Whitney sd in null simulations,
    and the half-split formula gives 1.41x."""
    a, b = max(n_reference / 2.0, 1.0), max(n_current / 2.0, 1.0)
    return math.sqrt((a + b + 1) / (12.0 * a * b))


def auc_p_value(auc: float, n_reference: int, n_current: int) -> float:
    """Approximate one-sided P(AUC >= auc) for indistinguishable samples (normal approximation)."""
    return 0.5 * math.erfc((auc - 0.5) / null_auc_sd(n_reference, n_current) / math.sqrt(2))


def auc_threshold(min_auc: float, n_reference: int, n_current: int, alpha: float) -> float:
    """``min_auc``, or the AUC that indistinguishable samples exceed with probability ``alpha`` if higher."""
    return max(min_auc, 0.5 + statistics.NormalDist().inv_cdf(1.0 - alpha) * null_auc_sd(n_reference, n_current))


def _register_embedding_stattest() -> None:
    """Teach Evidently the ``embedding_domain_auc`` stattest (idempotent; done at first use, not import)."""
    from evidently.legacy.calculations.stattests import StatTest, register_stattest
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    from evidently.legacy.core import ColumnType

    if EMBEDDING_STATTEST in _registered_stat_tests:
        return

    def _domain_auc(reference_data: pd.Series, current_data: pd.Series, feature_type, threshold: float):
        from sklearn.metrics import roc_auc_score

        y = np.r_[np.zeros(len(reference_data)), np.ones(len(current_data))]
        auc = float(roc_auc_score(y, np.r_[reference_data.to_numpy(float), current_data.to_numpy(float)]))
        return auc, auc > threshold

    register_stattest(
        StatTest(
            name=EMBEDDING_STATTEST,
            display_name="Embedding domain classifier ROC AUC",
            allowed_feature_types=[ColumnType.Numerical],
            default_threshold=0.55,
        ),
        default_impl=_domain_auc,
    )


# ----- the report ---------------------------------------------------------------------------------------


def _check_inputs(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> None:
    for name, frame, minimum in (
        ("reference profile", reference, config.min_reference_rows),
        ("traffic window", current, config.min_current_rows),
    ):
        if frame is None or len(frame) == 0:
            raise DriftInputError(f"the {name} is empty: nothing to compare")
        missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
        if missing:
            raise DriftInputError(
                f"the {name} lacks column(s) {missing}: build it with fakenews_ml.monitoring.reference"
            )
        if len(frame) < minimum:
            raise DriftInputError(
                f"the {name} has {len(frame)} rows; at least {minimum} are needed for a meaningful drift test "
                f"(DriftConfig.min_{'reference' if name.startswith('reference') else 'current'}_rows)"
            )
    ref_dim, cur_dim = embedding_matrix(reference.head(1)).shape[1], embedding_matrix(current.head(1)).shape[1]
    if ref_dim != cur_dim:
        raise DriftInputError(f"embedding sizes differ: reference {ref_dim}, window {cur_dim} (different models?)")
    ref_model, cur_model = reference.attrs.get("model_version"), current.attrs.get("model_version")
    if config.require_same_model and ref_model and cur_model and ref_model != cur_model:
        raise DriftInputError(
            f"the reference profile was built with model {ref_model} but the window was embedded with {cur_model}: "
            "embeddings of two models are not comparable; rebuild the reference profile for the current model"
        )


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed) if len(frame) > n else frame


def _evidently_frame(features: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    frame = features[FEATURE_COLUMNS].reset_index(drop=True).copy()
    frame["title"] = frame["title"].astype(str)
    frame["predicted_label"] = frame["predicted_label"].astype(int).map(LABEL_NAMES)
    frame[EMBEDDING_SCORE_COLUMN] = scores
    return frame


def _thresholds(config: DriftConfig, n_reference: int, n_current: int) -> dict[str, float]:
    base = dict.fromkeys(NUMERICAL_FEATURES, config.num_threshold)
    base.update(dict.fromkeys(CATEGORICAL_FEATURES, config.cat_threshold))
    base.update(dict.fromkeys(TEXT_FEATURES, config.text_threshold))
    unknown = sorted(set(config.per_feature_threshold) - set(base))
    if unknown:
        raise DriftInputError(f"per_feature_threshold names unknown column(s) {unknown}; known: {sorted(base)}")
    thresholds = {**base, **config.per_feature_threshold}
    if config.text_method == "abs_text_content_drift":  # scored on a 50% held-out split of both samples
        for column in TEXT_FEATURES:
            thresholds[column] = auc_threshold(thresholds[column], n_reference, n_current, config.auc_alpha)
    return thresholds


def _build_report(config: DriftConfig, thresholds: dict[str, float], embedding_threshold: float):
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    _register_embedding_stattest()
    methods = dict.fromkeys(NUMERICAL_FEATURES, config.num_method)
    methods.update(dict.fromkeys(CATEGORICAL_FEATURES, config.cat_method))
    methods.update(dict.fromkeys(TEXT_FEATURES, config.text_method))
    return Report(
        [
            DataDriftPreset(
                columns=DRIFT_FEATURES,
                drift_share=config.drift_share,
                per_column_method=methods,
                per_column_threshold=thresholds,
            ),
            # kept out of the preset so it does not count in the drift share: it has its own threshold
            ValueDrift(column=EMBEDDING_SCORE_COLUMN, method=EMBEDDING_STATTEST, threshold=embedding_threshold),
        ],
        include_tests=True,
    )


def _feature_results(snapshot_dict: dict) -> tuple[float, dict[str, FeatureDrift]]:
    """Drift share and per-column results, read back from Evidently's own output."""
    metrics = snapshot_dict["metrics"]
    failed = {
        t["metric_config"]["metric_id"]
        for t in snapshot_dict["tests"]
        if t.get("id") == "drift" and t.get("status") in ("FAIL", "WARNING")
    }
    share = next(m["value"]["share"] for m in metrics if m["config"]["type"].endswith("DriftedColumnsCount"))
    features = {}
    for m in metrics:
        config = m["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        features[config["column"]] = FeatureDrift(
            column=config["column"],
            stattest=str(config.get("method")),
            score=float(m["value"]),
            threshold=float(config.get("threshold")),
            drifted=m["id"] in failed,
        )
    return float(share), features


def compute_drift(
    reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig | None, out_dir: Path | str
) -> DriftResult:
    """Compare a window's feature frame with the reference profile; write ``report.html`` and
    ``report.json`` into ``out_dir`` and return the verdict. Raises ``DriftInputError`` (an InputError
    and a ValueError) for an empty or too small window or profile, or mismatched embeddings."""
    from evidently import DataDefinition, Dataset
    from sklearn.exceptions import ConvergenceWarning

    started = time.perf_counter()
    config = config or DriftConfig()
    _check_inputs(reference, current, config)
    reference = _sample(reference, config.max_reference_rows, config.seed)
    current = _sample(current, config.max_current_rows, config.seed)
    thresholds = _thresholds(config, len(reference), len(current))

    ref_scores, cur_scores, auc, dims = embedding_domain_scores(
        embedding_matrix(reference),
        embedding_matrix(current),
        folds=config.embedding_folds,
        pca_components=config.embedding_pca_components,
        seed=config.seed,
    )
    threshold = auc_threshold(config.embedding_threshold, len(reference), len(current), config.auc_alpha)
    embedding = EmbeddingDrift(
        method=f"{config.embedding_method} (logistic regression, {config.embedding_folds}-fold CV ROC AUC)",
        score=auc,
        p_value=auc_p_value(auc, len(reference), len(current)),
        threshold=threshold,
        min_auc=config.embedding_threshold,
        drifted=auc > threshold,
        dims=dims,
    )

    definition = DataDefinition(
        numerical_columns=NUMERICAL_FEATURES + [EMBEDDING_SCORE_COLUMN],
        categorical_columns=CATEGORICAL_FEATURES,
        text_columns=TEXT_FEATURES,
    )
    with warnings.catch_warnings():
        # Evidently's text classifier stops at max_iter=50 by design and warns on every run
        warnings.simplefilter("ignore", ConvergenceWarning)
        snapshot = _build_report(config, thresholds, threshold).run(
            Dataset.from_pandas(_evidently_frame(current, cur_scores), data_definition=definition),
            Dataset.from_pandas(_evidently_frame(reference, ref_scores), data_definition=definition),
        )
    evidently_dict = snapshot.dict()
    drift_share, all_features = _feature_results(evidently_dict)
    features = {name: all_features[name] for name in DRIFT_FEATURES}

    reasons = []
    if drift_share >= config.drift_share:
        drifted_names = ", ".join(n for n, f in features.items() if f.drifted)
        reasons.append(f"drift share {drift_share:.2f} >= {config.drift_share:.2f} ({drifted_names})")
    if embedding.drifted:
        reasons.append(f"embedding drift {embedding.score:.3f} > {embedding.threshold:.3f}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = DriftResult(
        drifted=bool(reasons),
        drift_share=drift_share,
        drift_share_threshold=config.drift_share,
        features=features,
        embedding=embedding,
        n_reference=len(reference),
        n_current=len(current),
        html_path=out_dir / REPORT_HTML,
        json_path=out_dir / REPORT_JSON,
        reasons=reasons,
        model_version=reference.attrs.get("model_version") or current.attrs.get("model_version"),
    )
    with atomic_path(result.html_path) as tmp:
        snapshot.save_html(str(tmp))
    result.seconds = time.perf_counter() - started
    # strict JSON (NaN -> null) so that any reader, not only Python's, can parse it
    document = {
        "summary": result.to_metadata(),
        "config": config.model_dump(),
        "evidently": json.loads(snapshot.json()),
    }
    write_text(result.json_path, json.dumps(_finite(document), allow_nan=False, default=str))
    return result
