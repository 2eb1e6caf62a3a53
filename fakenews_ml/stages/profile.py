"""reference_profile: what "normal" traffic looks like to the production model.

A seeded sample of one split's titles (the validation split by default) scored and embedded by the champion's
serving variant, written in the drift monitor's own format (``fakenews_ml.monitoring.reference``: profile.csv
+ embeddings.npy + profile.json), so a drift report compares like with like.
"""

from __future__ import annotations

import pandas as pd

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, load_frame
from fakenews_ml.bundle import read_meta
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import ProfileConfig
from fakenews_ml.environment import artifact_store
from fakenews_ml.manifests import NewsSplits, ProductionModel, ProfiledModel, ReferenceProfile
from fakenews_ml.monitoring.reference import build_reference_profile, embedding_matrix, load_profile, save_profile
from fakenews_ml.predict import Predictor

CODE_VERSION = code_version(__name__)


def profile_serving_model(production: ProductionModel, splits: NewsSplits, config: ProfileConfig) -> ReferenceProfile:
    """Profile ``config.split`` with the serving model ``production`` names (cached per model and data)."""
    store = artifact_store()
    serving = store.fetch(production.serving)
    serving_meta = read_meta(serving)
    split = splits.splits[config.split]
    key = content_key(
        serving_meta["version"], serving_meta["weights_sha256"], split.digest, config.model_dump(), CODE_VERSION
    )
    location = artifact_location("reference_profile", key)

    def build(staging) -> ReferenceProfile:
        predictor = Predictor.from_path(serving, "fp32")  # the serving variant's own folder, as it is
        profile = build_reference_profile(load_frame(split), predictor, max_rows=config.sample_size, seed=config.seed)
        profile.attrs.update(variant=serving_meta["variant"], split=config.split, split_digest=split.digest)
        emb = embedding_matrix(profile)
        save_profile(profile, staging)
        return ReferenceProfile(
            code_version=CODE_VERSION,
            key=key,
            folder=location,
            rows=len(profile),
            embedding_dim=int(emb.shape[1]),
            model=ProfiledModel(
                serving=production.serving,
                version=production.version,  # the champion's version: one name everywhere (its variant beside it)
                variant=serving_meta["variant"],
                threshold=float(predictor.bundle.threshold),
            ),
            split=config.split,
            split_digest=split.digest,
            config=config,
            summary=_summary(profile, emb),
        )

    return cached_or_build(location, ReferenceProfile, build)


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


def load_reference(profile: ReferenceProfile) -> pd.DataFrame:
    """The profile frame (scalar features + embedding columns) a manifest names."""
    return load_profile(artifact_store().fetch(profile.folder))
