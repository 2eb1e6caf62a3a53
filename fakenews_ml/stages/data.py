"""Data steps: raw news -> validated news -> leak-free splits -> tokenized splits."""

from __future__ import annotations

import hashlib

import numpy as np
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
from fakenews_ml.config import DataConfig, ModelConfig, ValidationConfig
from fakenews_ml.data.readers import CANONICAL_COLUMNS, read_sources
from fakenews_ml.data.splits import (
    SPLITS,
    fingerprint,
    leaked_titles,
    normalize_title,
    split_news,
)
from fakenews_ml.data.tokenize import TokenizedSplit, tokenize_frame
from fakenews_ml.data.validation import ValidationReport, validate_news
from fakenews_ml.model.encoder import encoder_label, load_tokenizer, resolve_encoder

NEWS_FILE = "news.parquet"
LEAK_EXAMPLES = 5


def frame_digest(frame: pd.DataFrame) -> str:
    """Hash of every cell (not just ids and labels): detects any change in what a step wrote."""
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()[:16]


def label_counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["label"].astype(int).value_counts()
    return {"real": int(counts.get(0, 0)), "fake": int(counts.get(1, 0))}


def _frame_summary(frame: pd.DataFrame) -> dict:
    chars = frame["title"].astype(str).str.len()
    return {
        "rows": len(frame),
        "fingerprint": fingerprint(frame),
        "digest": frame_digest(frame),
        "label_counts": label_counts(frame),
        "title_chars": {"min": int(chars.min()), "median": float(chars.median()), "max": int(chars.max())}
        if len(frame)
        else {},
    }


def store_frame(stage: str, key: str, frame: pd.DataFrame, extra: dict) -> dict:
    """Write ``frame`` as ``<stage>/<key>/news.parquet`` (unless already there) and return its manifest."""
    target = artifact_dir(stage, key)
    existing = read_manifest(target)
    if existing is not None:
        return existing
    with staged_artifact(target) as staging:
        save_frame(frame, staging / NEWS_FILE)
        manifest = write_manifest(
            staging, {"stage": stage, "key": key, "path": str(target / NEWS_FILE), **_frame_summary(frame), **extra}
        )
    return manifest


def ingest_news(sources: list[str], progress: bool = False) -> dict:
    """Read every source (checksummed) into the canonical frame; the data version is the sources' sha256."""
    frame, resolved = read_sources(sources, progress=progress)
    source_list = [{"uri": src.uri, "sha256": src.sha256} for src in resolved]
    data_version = content_key([src.sha256 for src in resolved])
    key = content_key(source_list, frame_digest(frame))
    by_source = {str(name): int(n) for name, n in frame["source"].value_counts().items()}
    return store_frame(
        "raw_news", key, frame, {"sources": source_list, "data_version": data_version, "rows_by_source": by_source}
    )


def merge_feedback(news: pd.DataFrame, feedback: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``news`` plus the feedback rows; a news row whose normalised title got a feedback label is replaced by
    it (a person's label is the newer word). Returns the merged frame and how many news rows were replaced."""
    labelled = set(feedback["title"].map(normalize_title))
    replaced = news["title"].map(normalize_title).isin(labelled)
    merged = pd.concat([news[~replaced], feedback[CANONICAL_COLUMNS]], ignore_index=True)
    return merged.astype(news.dtypes.to_dict()), int(replaced.sum())


def stage_validated_news(raw: dict, config: ValidationConfig, feedback: dict | None = None) -> dict:
    """The frame the data-quality suite judges, with the suite's bounds recorded beside it: the raw news,
    plus the feedback labels of ``feedback`` (a ``snapshot_feedback`` manifest) when there are any.

    Without feedback rows the key (and so the folder, the digest and the data version) is exactly what it
    was before feedback existed: no feedback, no change, no retraining."""
    frame = load_frame(raw["path"])
    extra = {
        "validation_config": config.model_dump(),
        "raw_digest": raw["digest"],
        "sources": raw.get("sources", []),
        "feedback": {"rows": 0, "replaced_rows": 0, "digest": None},
    }
    if feedback and feedback["rows"]:
        frame, replaced = merge_feedback(frame, load_frame(feedback["path"]))
        key = content_key(raw["digest"], config.model_dump(), feedback["digest"])
        extra["feedback"] = {
            "rows": feedback["rows"],
            "replaced_rows": replaced,
            "digest": feedback["digest"],
            "key": feedback["key"],
            "path": feedback["path"],
        }
    else:
        key = content_key(raw["digest"], config.model_dump())
    extra["rows_by_source"] = {str(name): int(n) for name, n in frame["source"].value_counts().items()}
    return store_frame("validated_news", key, frame, extra)


def run_validation_suite(validated: dict) -> ValidationReport:
    """The Great Expectations suite on exactly the frame ``validated`` names, with its recorded bounds."""
    return validate_news(load_frame(validated["path"]), ValidationConfig(**validated["validation_config"]))


def split_validated_news(validated: dict, config: DataConfig) -> dict:
    """Dedupe on the normalised title, then a seeded stratified train/val/test split (leak-free by construction)."""
    settings = config.model_dump(exclude={"sources"})
    key = content_key(validated["digest"], settings)
    target = artifact_dir("news_splits", key)
    existing = read_manifest(target)
    if existing is not None:
        return existing
    result = split_news(load_frame(validated["path"]), config)
    with staged_artifact(target) as staging:
        splits = {}
        for name, part in result.frames.items():
            part = part.drop(columns=["norm_title"], errors="ignore")  # a helper of deduplication only
            save_frame(part, staging / f"{name}.parquet")
            splits[name] = {"path": str(target / f"{name}.parquet"), **_frame_summary(part)}
        manifest = write_manifest(
            staging,
            {
                "stage": "news_splits",
                "key": key,
                "splits": splits,
                "fingerprint": content_key({name: info["digest"] for name, info in splits.items()}),
                "duplicates_removed": result.duplicates_removed,
                "conflicting_labels_removed": result.conflicting_labels_removed,
                "empty_titles_removed": result.empty_titles_removed,
                "config": settings,
                "validated_digest": validated["digest"],
                # carried along for the lineage of the bundles trained on these splits
                "sources": validated.get("sources", []),
                "feedback": validated.get("feedback"),
            },
        )
    return manifest


def load_split(splits: dict, name: str) -> pd.DataFrame:
    return load_frame(splits["splits"][name]["path"])


def check_split_leakage(splits: dict) -> dict:
    """Re-check the written split files: no normalised title may appear in two splits."""
    frames = {
        name: load_split(splits, name) for name in SPLITS
    }  # fixed order: pairs read train&val, train&test, val&test
    leaks = leaked_titles(frames)
    return {
        "passed": not any(leaks.values()),
        "shared_titles": {pair: len(titles) for pair, titles in leaks.items()},
        "examples": {pair: titles[:LEAK_EXAMPLES] for pair, titles in leaks.items() if titles},
        "rows": {name: len(frame) for name, frame in frames.items()},
    }


def _tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tokenize_news_splits(splits: dict, model_config: ModelConfig) -> dict:
    """Every split through the encoder's fast tokenizer, saved as ragged int32 arrays (``.npz``, no pickles)."""
    tokenizer = load_tokenizer(model_config)
    digest = _tokenizer_digest(tokenizer)
    key = content_key(splits["fingerprint"], digest, model_config.max_length)
    target = artifact_dir("tokenized_news", key)
    existing = read_manifest(target)
    if existing is not None:
        return existing
    with staged_artifact(target) as staging:
        parts = {}
        for name in SPLITS:
            split = tokenize_frame(load_split(splits, name), tokenizer, model_config.max_length)
            split.save(staging / f"{name}.npz")
            lengths = split.lengths()
            parts[name] = {
                "path": str(target / f"{name}.npz"),
                "rows": len(split),
                "mean_tokens": round(float(lengths.mean()), 2) if len(split) else 0.0,
                "max_tokens": int(lengths.max()) if len(split) else 0,
                "truncated_share": round(float(np.mean(lengths >= model_config.max_length)), 4) if len(split) else 0.0,
            }
        manifest = write_manifest(
            staging,
            {
                "stage": "tokenized_news",
                "key": key,
                "fingerprint": key,
                "splits": parts,
                "encoder": model_config.encoder,
                "encoder_label": encoder_label(model_config.encoder),
                "encoder_path": resolve_encoder(model_config.encoder),
                "max_length": model_config.max_length,
                "tokenizer_digest": digest,
                "vocab_size": int(tokenizer.vocab_size),
                "splits_fingerprint": splits["fingerprint"],
            },
        )
    return manifest


def load_tokenized(tokenized: dict) -> dict[str, TokenizedSplit]:
    return {name: TokenizedSplit.load(info["path"]) for name, info in tokenized["splits"].items()}
