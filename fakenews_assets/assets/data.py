"""Data group: raw_news -> validated_news -> news_splits -> tokenized_news."""

import dagster as dg

from fakenews_assets.configs import (
    RawNewsConfig,
    SplitConfig,
    TokenizeConfig,
    ValidatedNewsConfig,
    core,
)
from fakenews_assets.k8s import DATA_STEP, TOKENIZE_STEP
from fakenews_assets.metadata import class_balance, frame_metadata, sample_table
from fakenews_ml.artifacts import load_frame
from fakenews_ml.config import (
    DataConfig,
    ModelConfig,
    ValidationConfig,
    default_sources,
    parse_sources,
)

GROUP = "data"
OWNERS = ["team:ml-platform"]


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas"},
    code_version="1",
    description="Every configured news source read into one canonical frame (id, title, text, label, source). "
    "Sources are checksummed; the data version is their sha256.",
)
def raw_news(config: RawNewsConfig) -> dg.Output[dict]:
    from fakenews_ml.stages.data import ingest_news

    # progress=True: download progress of remote sources shows in the run's stderr log
    manifest = ingest_news(parse_sources(config.sources or []) or default_sources(), progress=True)
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["data_version"]),
        metadata={
            **frame_metadata(manifest),
            "sources": dg.MetadataValue.json(manifest["sources"]),
            "rows_by_source": dg.MetadataValue.json(manifest["rows_by_source"]),
            "sample": sample_table(load_frame(manifest["path"])),
        },
    )


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas", "great_expectations"},
    code_version="1",
    description="The training data that the Great Expectations suite judges (a blocking check: nothing downstream "
    "runs on data that fails it): the raw news plus the feedback labels people gave (a feedback label replaces "
    "a news row with the same headline), with the suite's bounds recorded beside it. No feedback: the same data "
    "version as the raw news alone, so nothing retrains.",
)
def validated_news(config: ValidatedNewsConfig, raw_news: dict, feedback_labels: dict) -> dg.Output[dict]:
    from fakenews_ml.stages.data import stage_validated_news

    manifest = stage_validated_news(raw_news, core(config, ValidationConfig), feedback_labels)
    feedback = manifest.get("feedback") or {}
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["digest"]),
        metadata={
            **frame_metadata(manifest),
            "feedback_rows": dg.MetadataValue.int(feedback.get("rows", 0)),
            "replaced_by_feedback": dg.MetadataValue.int(feedback.get("replaced_rows", 0)),
            "rows_by_source": dg.MetadataValue.json(manifest.get("rows_by_source") or {}),
            "title_chars": dg.MetadataValue.json(manifest["title_chars"]),
            "suite_bounds": dg.MetadataValue.json(manifest["validation_config"]),
            "sample": sample_table(load_frame(manifest["path"])),
        },
    )


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas"},
    code_version="1",
    description="Titles deduplicated on their normalised form, then a seeded, stratified train/val/test split; "
    "the test split is the frozen split every model is compared on.",
)
def news_splits(config: SplitConfig, validated_news: dict) -> dg.Output[dict]:
    from fakenews_ml.stages.data import split_validated_news

    manifest = split_validated_news(validated_news, core(config, DataConfig, sources=[]))
    splits = manifest["splits"]
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["fingerprint"]),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(sum(s["rows"] for s in splits.values())),
            **{f"rows_{name}": dg.MetadataValue.int(s["rows"]) for name, s in splits.items()},
            **{f"fake_share_{name}": class_balance(s["label_counts"])["fake_share"] for name, s in splits.items()},
            "duplicates_removed": dg.MetadataValue.int(manifest["duplicates_removed"]),
            "conflicting_labels_removed": dg.MetadataValue.int(manifest["conflicting_labels_removed"]),
            "fingerprints": dg.MetadataValue.json({name: s["fingerprint"] for name, s in splits.items()}),
            "test_sample": sample_table(load_frame(splits["test"]["path"]), columns=("title", "label")),
        },
    )


@dg.asset(
    op_tags=TOKENIZE_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "numpy"},
    code_version="1",
    description="Every split through the encoder's fast tokenizer, stored as ragged int32 arrays (.npz, no pickles).",
)
def tokenized_news(config: TokenizeConfig, news_splits: dict) -> dg.Output[dict]:
    from fakenews_ml.stages.data import tokenize_news_splits

    manifest = tokenize_news_splits(news_splits, core(config, ModelConfig))
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest["fingerprint"]),
        metadata={
            "encoder": manifest["encoder_label"],
            "max_length": dg.MetadataValue.int(manifest["max_length"]),
            "vocab_size": dg.MetadataValue.int(manifest["vocab_size"]),
            "splits": dg.MetadataValue.json(manifest["splits"]),
            "truncated_share_train": dg.MetadataValue.float(manifest["splits"]["train"]["truncated_share"]),
        },
    )
