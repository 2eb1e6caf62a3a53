"""Monitoring steps: the prediction log's state, one day of logged traffic, that day's drift report, and
the feedback labels people gave back (merged into training data by ``stages.data.stage_validated_news``).

Like every step, each takes and returns small JSON-able manifests; Dagster only wires them together.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from fakenews_ml.artifacts import (
    artifact_dir,
    content_key,
    load_frame,
    read_manifest,
    save_frame,
    staged_artifact,
    write_manifest,
)
from fakenews_ml.config import DriftConfig
from fakenews_ml.data.validation import ValidationReport, validate_news
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.stages.data import frame_digest, store_frame

PREDICTIONS_FILE = "predictions.parquet"
DRIFT_PLOT = "drift_scores.png"
INSUFFICIENT = "insufficient_data"
# Stattests whose score is a domain classifier's ROC AUC: 0.5 means "indistinguishable", not 0.
AUC_STATTESTS = ("abs_text_content_drift", "embedding")


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


# ----- the prediction log -------------------------------------------------------------------------------


def observe_prediction_log(log: PredictionLog) -> dict:
    """The log's state: counts, highest ids, time span. ``data_version`` changes whenever a prediction or a
    feedback label is added (ids only grow), and only then."""
    from sqlalchemy.engine import make_url

    stats = log.stats()
    last = stats["last_prediction_at"]
    version = (
        f"{stats['predictions']}-{stats['max_id']}-{int(last.timestamp()) if last else 0}"
        f"-fb{stats['feedback']}-{stats['feedback_max_id']}"
    )
    return {
        **stats,
        "first_prediction_at": _iso(stats["first_prediction_at"]),
        "last_prediction_at": _iso(last),
        "data_version": version,
        "url": make_url(log.url).render_as_string(hide_password=True),
    }


def _day_bounds(day: str) -> tuple[date, date]:
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


def snapshot_daily_predictions(log: PredictionLog, day: str) -> dict:
    """Every prediction logged on UTC ``day`` (YYYY-MM-DD), frozen as a parquet file (content-addressed:
    the same rows give the same folder and digest, so an unchanged day keeps its data version)."""
    start, end = _day_bounds(day)
    frame = log.window(start, end)
    digest = frame_digest(frame)
    key = content_key("daily_predictions", day, digest)
    target = artifact_dir("daily_predictions", key)
    existing = read_manifest(target)
    if existing is not None:
        return existing
    with staged_artifact(target) as staging:
        save_frame(frame, staging / PREDICTIONS_FILE)
        return write_manifest(
            staging,
            {
                "stage": "daily_predictions",
                "key": key,
                "day": day,
                "path": str(target / PREDICTIONS_FILE),
                "rows": len(frame),
                "digest": digest,
                **_traffic_summary(frame),
            },
        )


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
        names, values, drifted = zip(*rows)
        ax.barh(names, values, color=["#d62728" if d else "#1f77b4" for d in drifted])
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
        ax.invert_yaxis()
        ax.set_xlabel("score / threshold (AUCs measured from 0.5); drift at >= 1")
        ax.set_title(title or f"drift share {summary['drift_share']:.2f}", fontsize=10)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        fig.savefig(partial, format="png")
        partial.replace(path)
    finally:
        plt.close(fig)
    return path


def usable_rows(frame: pd.DataFrame) -> int:
    """Rows with a non-blank title: the ones a drift test can use."""
    if frame.empty:
        return 0
    return int(frame["title"].fillna("").astype(str).str.strip().ne("").sum())


def report_drift(daily: dict, profile: dict, config: DriftConfig, out_dir: Path | str | None = None) -> dict:
    """Compare one day of logged traffic (a ``snapshot_daily_predictions`` manifest) with the reference
    profile (a ``profile_serving_model`` manifest), embedding the window with the very model that built the
    profile. Writes report.html / report.json (and a plot) into ``out_dir`` (default: the drift store's
    folder for the day) and returns the verdict.

    A window with fewer usable rows than ``config.min_current_rows`` gets ``status: insufficient_data`` and
    no report (too little traffic to judge is not drift). Other unusable inputs (a profile that is too
    small, thresholds naming unknown columns) raise ``DriftInputError``."""
    from fakenews_ml.monitoring.drift import compute_drift
    from fakenews_ml.monitoring.drift_store import report_dir
    from fakenews_ml.monitoring.reference import load_profile, window_features
    from fakenews_ml.predict import Predictor

    day = daily["day"]
    frame = load_frame(daily["path"])
    rows = usable_rows(frame)
    outcome = {
        "stage": "drift_report",
        "partition": day,
        "key": content_key(daily["digest"], profile["key"], config.model_dump()),
        "daily_digest": daily["digest"],
        "reference_key": profile["key"],
        "reference_model_version": profile["model"]["version"],
        "rows": rows,
        "min_current_rows": config.min_current_rows,
        "config": config.model_dump(),
    }
    if rows < config.min_current_rows:
        return {
            **outcome,
            "status": INSUFFICIENT,
            "drifted": False,
            "reason": f"insufficient data: {rows} usable prediction(s) on {day}, at least {config.min_current_rows} "
            "needed for a drift test (DriftConfig.min_current_rows); no report written",
        }
    out_dir = Path(out_dir) if out_dir is not None else report_dir(day)
    predictor = Predictor.from_path(profile["model"]["path"], "fp32")  # the profile's own model (variant folder)
    reference = load_profile(profile["path"])
    current = window_features(frame, predictor)
    result = compute_drift(reference, current, config, out_dir)
    summary = result.to_metadata()
    plot = drift_plot(
        summary,
        out_dir / DRIFT_PLOT,
        title=f"{day}: drift share {summary['drift_share']:.2f}" + (" (DRIFT)" if result.drifted else ""),
    )
    return {
        **outcome,
        **summary,
        "status": "drifted" if result.drifted else "ok",
        "plot_path": str(plot),
        "report_dir": str(out_dir),
    }


# ----- feedback labels ----------------------------------------------------------------------------------


def snapshot_feedback(log: PredictionLog) -> dict:
    """Every feedback label so far as a canonical news frame (one row per title, the latest label wins,
    ``source`` = ``feedback:<origin>``), stored content-addressed. No feedback gives the same empty
    snapshot every time, so nothing downstream looks changed."""
    from fakenews_ml.monitoring.feedback import feedback_validation_config

    frame = log.feedback_frame()
    key = content_key("feedback_labels", frame_digest(frame))
    by_source = {str(name): int(n) for name, n in frame["source"].value_counts().items()}
    return store_frame(
        "feedback_labels",
        key,
        frame,
        {
            "validation_config": feedback_validation_config().model_dump(),
            "rows_by_source": by_source,
        },
    )


def run_feedback_suite(feedback: dict) -> ValidationReport:
    """The raw-data Great Expectations suite (with the feedback bounds recorded in the manifest) on exactly
    the snapshot ``feedback`` names. No labels at all is valid: there is simply nothing to merge."""
    from fakenews_ml.config import ValidationConfig

    if feedback["rows"] == 0:
        return ValidationReport(success=True, rows=0, results=[])
    return validate_news(load_frame(feedback["path"]), ValidationConfig(**feedback["validation_config"]))
