"""raw_news: every configured source read (checksummed) into one canonical frame."""

from __future__ import annotations

from fakenews_ml.artifacts import (
    artifact_location,
    cached_or_build,
    content_key,
    frame_digest,
    rows_by_source,
    save_frame,
)
from fakenews_ml.code_versions import code_version
from fakenews_ml.data.readers import read_sources
from fakenews_ml.manifests import RawNews, SourceRead, SourceRecord

CODE_VERSION = code_version(__name__)
NEWS_FILE = "news.parquet"


def ingest_news(sources: list[str], progress: bool = False) -> RawNews:
    """Read every source into the canonical frame; the data version is the sources' sha256."""
    frame, resolved = read_sources(sources, progress=progress)
    records = [SourceRecord(uri=src.uri, sha256=src.sha256) for src in resolved]
    key = content_key([r.model_dump() for r in records], frame_digest(frame), CODE_VERSION)
    location = artifact_location("raw_news", key)
    return cached_or_build(
        location,
        RawNews,
        lambda staging: RawNews(
            code_version=CODE_VERSION,
            key=key,
            news=save_frame(frame, staging, location, NEWS_FILE),
            sources=records,
            read=[SourceRead(**stats) for stats in frame.attrs["read_stats"]],
            data_version=content_key([r.sha256 for r in records]),
            rows_by_source=rows_by_source(frame),
        ),
    )
