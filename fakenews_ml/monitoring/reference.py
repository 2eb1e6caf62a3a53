"""Drift features: what "normal" traffic looks like (the reference profile) and the same view of a window
of logged traffic, built by one function so that the two sides are always comparable.

One row per headline:

    title            the headline as served (text drift)
    title_length     characters
    word_count       whitespace-separated words
    prob_fake        the model's P(fake)
    predicted_label  0 = real, 1 = fake (the model's decision, not a ground-truth label)
    confidence       max(prob_fake, 1 - prob_fake)
    emb_000..emb_N   the model's own pooled sentence embedding (float32)

Embeddings are kept whole (all dimensions, float32) rather than reduced: a 5,000-row MiniLM profile is
7.7 MB, and any reduction is a choice of the drift test made at comparison time, not baked into the profile.
On disk a profile is three plain files, never a pickle:

    profile.csv      the scalar columns
    embeddings.npy   the embedding matrix (float32, loaded with ``allow_pickle=False``)
    profile.json     row count, embedding size, model version, seed, creation time
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fakenews_ml.atomic import atomic_path, write_text
from fakenews_ml.errors import InputError
from fakenews_ml.tables import write_csv_atomically

FEATURE_COLUMNS = ["title", "title_length", "word_count", "prob_fake", "predicted_label", "confidence"]
EMBEDDING_PREFIX = "emb_"
PROFILE_CSV = "profile.csv"
EMBEDDINGS_NPY = "embeddings.npy"
PROFILE_JSON = "profile.json"
PROFILE_FORMAT = 1
# Predictor.predict takes at most PredictConfig.max_batch titles per call; stay well below it.
_CHUNK = 2_000


def embedding_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if isinstance(c, str) and c.startswith(EMBEDDING_PREFIX)]


def embedding_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The embedding columns as one float32 matrix (rows in frame order)."""
    columns = embedding_columns(frame)
    if not columns:
        raise InputError(f"no embedding columns ({EMBEDDING_PREFIX}*) in the feature frame")
    return frame[columns].to_numpy(dtype=np.float32)


def _embedding_names(dim: int) -> list[str]:
    width = max(3, len(str(dim - 1)))
    return [f"{EMBEDDING_PREFIX}{i:0{width}d}" for i in range(dim)]


def _clean_titles(titles) -> list[str]:
    if isinstance(titles, str):
        raise InputError("expected a list of headlines, got one string")
    return [str(t).strip() for t in titles]


def feature_frame(
    titles: Sequence[str], prob_fake: np.ndarray, predicted_label: np.ndarray, embeddings: np.ndarray
) -> pd.DataFrame:
    """Assemble the feature frame from per-headline model outputs (all aligned with ``titles``)."""
    titles = _clean_titles(titles)
    prob = np.asarray(prob_fake, dtype=np.float64)
    label = np.asarray(predicted_label).astype(np.int8)
    emb = np.asarray(embeddings, dtype=np.float32)
    n = len(titles)
    if not (len(prob) == len(label) == len(emb) == n):
        raise InputError(
            f"misaligned inputs: {n} titles, {len(prob)} probabilities, {len(label)} labels, {len(emb)} embeddings"
        )
    if emb.ndim != 2:
        raise InputError(f"embeddings must be a 2-D matrix, got shape {emb.shape}")
    if n and (np.isnan(prob).any() or (prob < 0).any() or (prob > 1).any()):
        raise InputError("prob_fake must lie in [0, 1] with no missing values")
    if n and not np.isin(label, (0, 1)).all():
        raise InputError("predicted labels must be 0 (real) or 1 (fake)")
    scalars = pd.DataFrame(
        {
            "title": pd.Series(titles, dtype="string"),
            "title_length": np.fromiter((len(t) for t in titles), dtype=np.int64, count=n),
            "word_count": np.fromiter((len(t.split()) for t in titles), dtype=np.int64, count=n),
            "prob_fake": prob,
            "predicted_label": label,
            "confidence": np.maximum(prob, 1.0 - prob),
        }
    )
    vectors = pd.DataFrame(emb, columns=_embedding_names(emb.shape[1]) if emb.shape[1] else [])
    return pd.concat([scalars, vectors], axis=1)


def _model_outputs(titles: list[str], predictor, need_predictions: bool):
    """Embeddings (and, when asked, probabilities and labels) in chunks the predictor accepts."""
    probs, labels, embs = [], [], []
    for start in range(0, len(titles), _CHUNK):
        chunk = titles[start : start + _CHUNK]
        if need_predictions:
            predicted = predictor.predict(chunk)
            probs.append(predicted["prob_fake"].to_numpy())
            labels.append(predicted["label"].to_numpy())
        embs.append(predictor.embed(chunk))
    emb = np.concatenate(embs) if embs else np.empty((0, 0), np.float32)
    if not need_predictions:
        return None, None, emb
    return np.concatenate(probs), np.concatenate(labels), emb


def traffic_features(titles: Sequence[str], predictor, prob_fake=None, labels=None) -> pd.DataFrame:
    """Drift features of a window of traffic, from the same builder as the reference profile.

    Logged rows already carry the served ``prob_fake`` and ``label``: pass them and they are reused as
    logged (the model is then run only to embed). Without them the predictor scores the titles too.
    Blank titles are dropped (they were never servable); ``frame.attrs["dropped_blank"]`` counts them."""
    titles = _clean_titles(titles)
    if (prob_fake is None) != (labels is None):
        raise InputError("pass both prob_fake and labels (as logged) or neither")
    keep = np.array([bool(t) for t in titles], dtype=bool)
    titles = [t for t in titles if t]
    if not titles:
        raise InputError("the traffic window has no non-empty titles")
    if prob_fake is not None:
        prob_fake = np.asarray(prob_fake, dtype=np.float64)
        labels = np.asarray(labels)
        if len(prob_fake) != len(keep) or len(labels) != len(keep):
            raise InputError(f"{len(keep)} titles but {len(prob_fake)} prob_fake and {len(labels)} labels")
        prob_fake, labels = prob_fake[keep], labels[keep]
        _, _, emb = _model_outputs(titles, predictor, need_predictions=False)
    else:
        prob_fake, labels, emb = _model_outputs(titles, predictor, need_predictions=True)
    frame = feature_frame(titles, prob_fake, labels, emb)
    frame.attrs.update(model_version=predictor.version, dropped_blank=int((~keep).sum()))
    return frame


def window_features(log_frame: pd.DataFrame, predictor) -> pd.DataFrame:
    """Drift features of rows read from the prediction log (columns ``title``, ``prob_fake``, ``label``)."""
    missing = [c for c in ("title", "prob_fake", "label") if c not in log_frame.columns]
    if missing:
        raise InputError(f"prediction-log window lacks column(s) {missing}; found {list(log_frame.columns)}")
    return traffic_features(
        log_frame["title"].fillna("").astype(str).tolist(),
        predictor,
        prob_fake=log_frame["prob_fake"].to_numpy(),
        labels=log_frame["label"].to_numpy(),
    )


def build_reference_profile(frame: pd.DataFrame, predictor, max_rows: int = 5000, seed: int = 42) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` headlines of ``frame`` (a canonical news frame, or anything
    with a ``title`` column), scored and embedded by ``predictor``.

    Which rows to pass is the caller's choice: training titles describe the data the model learnt from,
    but a well-fitted model is more confident on rows it was trained on than on new traffic, which can
    read as confidence drift; rows the model never saw (the validation split) avoid that bias."""
    if "title" not in frame.columns:
        raise InputError(f"the reference frame has no 'title' column (found: {list(frame.columns)})")
    if max_rows < 1:
        raise InputError(f"max_rows must be positive, got {max_rows}")
    titles = frame["title"].dropna().astype(str).str.strip()
    titles = titles[titles != ""]
    if titles.empty:
        raise InputError("the reference frame has no non-empty titles")
    if len(titles) > max_rows:
        titles = titles.sample(n=max_rows, random_state=seed)
    profile = traffic_features(titles.tolist(), predictor)
    profile.attrs.update(seed=seed, source_rows=int(len(frame)))
    return profile


def save_profile(profile: pd.DataFrame, directory: Path | str) -> Path:
    """Write the profile as CSV + float32 .npy + JSON metadata (each file written atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    missing = [c for c in FEATURE_COLUMNS if c not in profile.columns]
    if missing:
        raise InputError(f"not a drift profile: missing column(s) {missing}")
    emb = embedding_matrix(profile)
    write_csv_atomically(profile[FEATURE_COLUMNS], directory / PROFILE_CSV)
    with atomic_path(directory / EMBEDDINGS_NPY) as tmp:
        np.save(tmp, emb, allow_pickle=False)
    meta = {
        "format": PROFILE_FORMAT,
        "rows": int(len(profile)),
        "embedding_dim": int(emb.shape[1]),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in profile.attrs.items() if isinstance(v, (str, int, float, bool)) or v is None},
    }
    write_text(directory / PROFILE_JSON, json.dumps(meta, indent=2))  # last: its presence means the profile is complete
    return directory


def load_profile(directory: Path | str) -> pd.DataFrame:
    """Read a profile written by ``save_profile`` (no pickle anywhere); metadata lands in ``frame.attrs``."""
    directory = Path(directory)
    meta_path = directory / PROFILE_JSON
    if not meta_path.is_file():
        raise InputError(
            f"no reference profile at {directory} ({PROFILE_JSON} missing): materialize the reference profile first"
        )
    meta = json.loads(meta_path.read_text())
    scalars = pd.read_csv(directory / PROFILE_CSV, dtype={"title": "string"}, keep_default_na=False, na_values=[])
    emb = np.load(directory / EMBEDDINGS_NPY, allow_pickle=False)
    if len(scalars) != meta["rows"] or emb.shape != (meta["rows"], meta["embedding_dim"]):
        raise InputError(
            f"reference profile at {directory} is inconsistent: {len(scalars)} CSV rows, embeddings {emb.shape}, "
            f"metadata says {meta['rows']} x {meta['embedding_dim']}"
        )
    profile = feature_frame(
        scalars["title"].tolist(), scalars["prob_fake"].to_numpy(), scalars["predicted_label"].to_numpy(), emb
    )
    profile.attrs.update({k: v for k, v in meta.items() if k not in ("format", "rows", "embedding_dim")})
    return profile
