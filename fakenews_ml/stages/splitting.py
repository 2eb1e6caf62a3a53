"""news_splits: titles deduplicated on their normalised form, then a seeded, stratified train/val/test split
(the test split is the frozen one every model is compared on)."""

from __future__ import annotations

from pydantic import BaseModel

from fakenews_ml.artifacts import artifact_location, cached_or_build, content_key, load_frame, save_frame
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import DataConfig
from fakenews_ml.data.splits import SPLITS, leaked_titles, split_news
from fakenews_ml.manifests import NewsSplits, ValidatedNews

CODE_VERSION = code_version(__name__)
LEAK_EXAMPLES = 5


def split_validated_news(validated: ValidatedNews, config: DataConfig) -> NewsSplits:
    """Dedupe on the normalised title, then split (leak-free by construction; ``check_split_leakage`` proves it)."""
    settings = config.model_dump(exclude={"sources"})
    key = content_key(validated.news.digest, settings, CODE_VERSION)
    location = artifact_location("news_splits", key)

    def build(staging) -> NewsSplits:
        result = split_news(load_frame(validated.news), config)
        splits = {
            name: save_frame(part.drop(columns=["norm_title"], errors="ignore"), staging, location, f"{name}.parquet")
            for name, part in result.frames.items()
        }
        return NewsSplits(
            code_version=CODE_VERSION,
            key=key,
            splits=splits,
            fingerprint=content_key({name: file.digest for name, file in splits.items()}),
            duplicates_removed=result.duplicates_removed,
            conflicting_labels_removed=result.conflicting_labels_removed,
            empty_titles_removed=result.empty_titles_removed,
            config=settings,
            validated_digest=validated.news.digest,
            sources=validated.sources,
            feedback=validated.feedback,
        )

    return cached_or_build(location, NewsSplits, build)


class LeakageCheck(BaseModel):
    passed: bool
    shared_titles: dict[str, int]  # per pair of splits
    examples: dict[str, list[str]]
    rows: dict[str, int]


def check_split_leakage(splits: NewsSplits) -> LeakageCheck:
    """Re-check the written split files: no normalised title may appear in two splits."""
    frames = {name: load_frame(splits.splits[name]) for name in SPLITS}  # fixed order: pairs read train&val, ...
    leaks = leaked_titles(frames)
    return LeakageCheck(
        passed=not any(leaks.values()),
        shared_titles={pair: len(titles) for pair, titles in leaks.items()},
        examples={pair: titles[:LEAK_EXAMPLES] for pair, titles in leaks.items() if titles},
        rows={name: len(frame) for name, frame in frames.items()},
    )
