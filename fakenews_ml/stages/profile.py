"""The reference profile step: what "normal" traffic looks like to the production model.

A seeded sample of one split's titles (training titles by default) scored and embedded by the serving
variant of the champion, written in the drift monitor's own format (``fakenews_ml.monitoring.reference``:
profile.csv + embeddings.npy + profile.json), so a drift report compares like with like.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fakenews_ml.artifacts import (
    artifact_dir,
    content_key,
    read_manifest,
    staged_artifact,
    write_manifest,
)
from fakenews_ml.bundle import read_meta
from fakenews_ml.config import ProfileConfig
from fakenews_ml.monitoring.reference import (
    EMBEDDINGS_NPY,
    PROFILE_CSV,
    build_reference_profile,
    embedding_matrix,
    load_profile,
    save_profile,
)
from fakenews_ml.predict import Predictor
from fakenews_ml.stages.data import load_split


def profile_serving_model(production: dict, splits: dict, config: ProfileConfig) -> dict:
    """Profile ``config.split`` with the serving model that ``production`` names (cached per model and data)."""
    serving = Path(production["serving_path"])
    serving_meta = read_meta(serving)
    split_info = splits["splits"][config.split]
    key = content_key(
        serving_meta["version"], serving_meta["weights_sha256"], split_info["digest"], config.model_dump()
    )
    target = artifact_dir("reference_profile", key)
    existing = read_manifest(target)
    if existing is not None:
        return existing
    predictor = Predictor.from_path(serving, "fp32")  # the serving variant's own folder, as it is
    profile = build_reference_profile(
        load_split(splits, config.split), predictor, max_rows=config.sample_size, seed=config.seed
    )
    profile.attrs.update(variant=serving_meta["variant"], split=config.split, split_digest=split_info["digest"])
    emb = embedding_matrix(profile)
    with staged_artifact(target) as staging:
        save_profile(profile, staging)
        return write_manifest(
            staging,
            {
                "stage": "reference_profile",
                "key": key,
                "path": str(target),
                "profile_csv": str(target / PROFILE_CSV),
                "embeddings_path": str(target / EMBEDDINGS_NPY),
                "rows": len(profile),
                "embedding_dim": int(emb.shape[1]),
                "model": {
                    "path": str(serving),
                    "version": serving_meta["version"],
                    "variant": serving_meta["variant"],
                    "threshold": float(predictor.bundle.threshold),
                },
                "split": config.split,
                "split_digest": split_info["digest"],
                "config": config.model_dump(),
                "summary": _summary(profile, emb),
            },
        )


def _summary(profile: pd.DataFrame, emb) -> dict:
    prob = profile["prob_fake"]
    return {
        "predicted_fake_share": float(profile["predicted_label"].mean()),
        "prob_fake": {
            "mean": float(prob.mean()),
            "p10": float(prob.quantile(0.1)),
            "p50": float(prob.median()),
            "p90": float(prob.quantile(0.9)),
        },
        "confidence_mean": float(profile["confidence"].mean()),
        "title_length_mean": float(profile["title_length"].mean()),
        "word_count_mean": float(profile["word_count"].mean()),
        "embedding_mean_norm": float((emb**2).sum(axis=1).mean() ** 0.5) if len(emb) else 0.0,
    }


def load_reference(profile_manifest: dict) -> pd.DataFrame:
    """The profile frame (scalar features + embedding columns) a manifest names."""
    return load_profile(profile_manifest["path"])
