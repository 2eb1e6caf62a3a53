"""Monitoring steps: the prediction log's state, one day of logged traffic, and that day's drift report."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, frame_digest
from fakenews_ml.atomic import atomic_dir, atomic_path
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import DriftConfig
from fakenews_ml.environment import artifact_store
from fakenews_ml.manifests import DailyPredictions, DriftReport, PredictionLogState, ReferenceProfile
from fakenews_ml.monitoring.drift_store import DRIFT_REPORTS, write_verdict
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.store import join

CODE_VERSION = code_version(__name__)
PREDICTIONS_FILE = "predictions.parquet"
DRIFT_PLOT = "drift_scores.png"
INSUFFICIENT = "insufficient_data"
# Stattests whose score is a domain classifier's ROC AUC: 0.5 means "indistinguishable", not 0.
AUC_STATTESTS = ("abs_text_content_drift", "embedding")


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


# ----- the prediction log -------------------------------------------------------------------------------


def observe_prediction_log(log: PredictionLog) -> PredictionLogState:
    """The log's state: counts, highest ids, time span. ``data_version`` changes whenever a prediction or a
    feedback label is added (ids only grow), and only then."""
    from sqlalchemy.engine import make_url

    stats = log.stats()
    last = stats["last_prediction_at"]
    version = (
        f"{stats['predictions']}-{stats['max_id']}-{int(last.timestamp()) if last else 0}"
        f"-fb{stats['feedback']}-{stats['feedback_max_id']}"
    )
    return PredictionLogState(
        **{**stats, "first_prediction_at": _iso(stats["first_prediction_at"]), "last_prediction_at": _iso(last)},
        data_version=version,
        url=make_url(log.url).render_as_string(hide_password=True),
    )


def day_bounds(day: str) -> tuple[date, date]:
    try:
        start = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"partition key {day!r} is not a day (YYYY-MM-DD)") from None
    return start, start + timedelta(days=1)


def _traffic_summary(frame: pd.DataFrame) -> dict:
    if frame.empty:
        return {
            "fake_rate": None,
            "mean_confidence": None,
            "mean_prob_fake": None,
            "by_model_version": {},
            "by_origin": {},
            "first_at": None,
            "last_at": None,
        }
    confidence = frame["prob_fake"].where(frame["prob_fake"] >= 0.5, 1.0 - frame["prob_fake"])
    by_version = {
        str(version): {
            "rows": len(part),
            "fake_rate": round(float(part["label"].mean()), 4),
            "mean_confidence": round(float(confidence[part.index].mean()), 4),
        }
        for version, part in frame.groupby("model_version")
    }
    return {
        "fake_rate": round(float(frame["label"].mean()), 4),
        "mean_confidence": round(float(confidence.mean()), 4),
        "mean_prob_fake": round(float(frame["prob_fake"].mean()), 4),
        "by_model_version": by_version,
        "by_origin": {str(k): int(v) for k, v in frame["origin"].value_counts().items()},
        "first_at": _iso(frame["created_at"].min().to_pydatetime()),
        "last_at": _iso(frame["created_at"].max().to_pydatetime()),
    }


def snapshot_daily_predictions(log: PredictionLog, day: str) -> DailyPredictions:
    """Every prediction logged on UTC ``day`` (YYYY-MM-DD), frozen as a parquet file (content-addressed: the
    same rows give the same folder and digest, so an unchanged day keeps its data version)."""
    start, end = day_bounds(day)
    frame = log.window(start, end)
    digest = frame_digest(frame)
    key = content_key("daily_predictions", day, digest, CODE_VERSION)
    location = artifact_location("daily_predictions", key)

    def build(staging) -> DailyPredictions:
        frame.reset_index(drop=True).to_parquet(staging / PREDICTIONS_FILE, index=False)
        return DailyPredictions(
            code_version=CODE_VERSION,
            key=key,
            day=day,
            predictions=join(location, PREDICTIONS_FILE),
            rows=len(frame),
            digest=digest,
            **_traffic_summary(frame),
        )

    return cached_or_build(location, DailyPredictions, build)


# ----- drift --------------------------------------------------------------------------------------------


def _relative_score(stattest: str, score: float | None, threshold: float | None) -> float:
    """Score on one scale for every test: 1.0 is the test's own threshold (AUCs measured from 0.5)."""
    if score is None or not threshold:
        return 0.0
    if any(stattest.startswith(name) for name in AUC_STATTESTS):
        return max(score - 0.5, 0.0) / max(threshold - 0.5, 1e-9)
    return score / threshold


def drift_plot(summary: dict, path: Path | str, title: str = "") -> Path:
    """Per-feature drift relative to its threshold as a bar chart (red = drifted); the embedding too."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    rows = [
        (name, _relative_score(f["stattest"], f["score"], f["threshold"]), f["drifted"])
        for name, f in summary["features"].items()
    ]
    emb = summary["embedding_drift"]
    rows.append(("embeddings", _relative_score("embedding", emb["score"], emb["threshold"]), emb["drifted"]))
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.2), dpi=80)
    try:
        names, values, drifted = zip(*rows, strict=True)
        ax.barh(names, values, color=["#d62728" if d else "#1f77b4" for d in drifted])
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
        ax.invert_yaxis()
        ax.set_xlabel("score / threshold (AUCs measured from 0.5); drift at >= 1")
        ax.set_title(title or f"drift share {summary['drift_share']:.2f}", fontsize=10)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def usable_rows(frame: pd.DataFrame) -> int:
    """Rows with a non-blank title: the ones a drift test can use."""
    if frame.empty:
        return 0
    return int(frame["title"].fillna("").astype(str).str.strip().ne("").sum())


def report_location(day: str) -> str:
    """The folder of one day's drift report (``day`` is the daily partition key, YYYY-MM-DD)."""
    return join(DRIFT_REPORTS, day)


def report_drift(daily: DailyPredictions, profile: ReferenceProfile, config: DriftConfig) -> DriftReport:
    """Compare one day of logged traffic with the reference profile, embedding the window with the very model
    that built the profile. Writes the day's folder (report.html, report.json, the plot) in one step and
    returns the verdict.

    A window with fewer usable rows than ``config.min_current_rows`` gets ``status: insufficient_data`` and no
    report (too little traffic to judge is not drift). Other unusable inputs (a profile that is too small,
    thresholds naming unknown columns) raise ``DriftInputError``."""
    from fakenews_ml.monitoring.drift import REPORT_HTML, REPORT_JSON, compute_drift
    from fakenews_ml.monitoring.reference import load_profile, window_features
    from fakenews_ml.predict import Predictor

    store = artifact_store()
    day = daily.day
    frame = pd.read_parquet(store.fetch(daily.predictions))
    rows = usable_rows(frame)
    outcome = {
        "code_version": CODE_VERSION,
        "partition": day,
        "key": content_key(daily.digest, profile.key, config.model_dump(), CODE_VERSION),
        "daily_digest": daily.digest,
        "reference_key": profile.key,
        "reference_model_version": profile.model.version,
        "model_variant": profile.model.variant,
        "rows": rows,
        "min_current_rows": config.min_current_rows,
        "config": config,
    }
    location = report_location(day)
    if rows < config.min_current_rows:
        manifest = DriftReport(
            **outcome,
            status=INSUFFICIENT,
            drifted=False,
            reason=f"insufficient data: {rows} usable prediction(s) on {day}, at least {config.min_current_rows} "
            "needed for a drift test (DriftConfig.min_current_rows); no report written",
        )
        # the day's folder holds only its verdict: a report of an earlier run of the day must not outlive it
        with atomic_dir(store.path(location), existing="replace") as staging:
            write_verdict(staging, manifest)
        store.publish(location)
        return manifest
    predictor = Predictor.from_path(store.fetch(profile.model.serving), "fp32")  # the profile's own model
    reference = load_profile(store.fetch(profile.folder))
    current = window_features(frame, predictor)
    with atomic_dir(store.path(location), existing="replace") as staging:
        result = compute_drift(reference, current, config, staging)
        summary = result.to_metadata()
        title = f"{day}: drift share {summary['drift_share']:.2f}" + (" (DRIFT)" if result.drifted else "")
        drift_plot(summary, staging / DRIFT_PLOT, title=title)
        summary["model_version"] = profile.model.version
        manifest = DriftReport(
            **outcome,
            **summary,
            status="drifted" if result.drifted else "ok",
            report=location,
            html=join(location, REPORT_HTML),
            json_report=join(location, REPORT_JSON),
            plot=join(location, DRIFT_PLOT),
        )
        write_verdict(staging, manifest)
    store.publish(location)
    return manifest
