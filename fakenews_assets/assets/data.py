"""Data group: raw_news + feedback_labels -> validated_news -> news_splits -> tokenized_news, each blocking
check beside its asset."""

import dagster as dg

from fakenews_assets.configs import (
    NewsSplitsConfig,
    RawNewsConfig,
    TokenizedNewsConfig,
    ValidatedNewsConfig,
    core,
)
from fakenews_assets.k8s import DATA_STEP, TOKENIZE_STEP
from fakenews_assets.metadata import (
    class_balance,
    counts_table,
    frame_metadata,
    json_metadata,
    number,
    sample_table,
    table,
)
from fakenews_assets.resources import PredictionLogStore
from fakenews_ml.artifacts import load_frame
from fakenews_ml.code_versions import code_version
from fakenews_ml.config import DataConfig, ModelConfig, ValidationConfig, default_sources, parse_sources
from fakenews_ml.manifests import FeedbackLabels, NewsSplits, RawNews, TokenizedNews, ValidatedNews

GROUP = "data"
OWNERS = ["team:ml-platform"]


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas"},
    code_version=code_version("fakenews_ml.stages.ingest"),
    description="Every configured news source read into one canonical frame (id, title, text, label, source). "
    "Sources are checksummed; the data version is their sha256.",
)
def raw_news(config: RawNewsConfig) -> dg.Output[RawNews]:
    from fakenews_ml.stages.ingest import ingest_news

    # progress=True: download progress of remote sources shows in the run's stderr log
    manifest = ingest_news(parse_sources(config.sources or []) or default_sources(), progress=True)
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.data_version),
        metadata={
            **frame_metadata(manifest.news),
            "code_version": manifest.code_version,
            "sources": table([s.model_dump() for s in manifest.sources], {"uri": "string", "sha256": "string"}),
            "rows_dropped": dg.MetadataValue.int(sum(r.rows_read - r.rows_kept for r in manifest.read)),
            "read": read_table(manifest.read),
            "rows_by_source": counts_table(manifest.rows_by_source),
            "sample": sample_table(load_frame(manifest.news)),
        },
    )


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas"},
    code_version=code_version("fakenews_ml.stages.feedback"),
    deps=["prediction_log"],
    description="Labels people gave back (dashboard, API, `fakenews feedback import`) as news rows with source "
    "'feedback:<origin>', one per headline (the latest label wins). Checked by the raw-data Great Expectations "
    "suite (blocking) and merged into validated_news, so the next training run learns from them.",
)
def feedback_labels(log_store: PredictionLogStore) -> dg.Output[FeedbackLabels]:
    from fakenews_ml.stages.feedback import snapshot_feedback

    with log_store.open() as log:
        manifest = snapshot_feedback(log)
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.news.digest),
        metadata={
            **frame_metadata(manifest.news),
            "code_version": manifest.code_version,
            "rows_by_source": counts_table(manifest.rows_by_source),
            "quarantined_rows": dg.MetadataValue.int(sum(manifest.quarantined_by_reason.values())),
            "quarantined_by_reason": counts_table(manifest.quarantined_by_reason, "reason"),
            **(
                {
                    "quarantine_sample": sample_table(
                        load_frame(manifest.quarantine), columns=("title", "label", "reason")
                    )
                }
                if manifest.quarantine
                else {}
            ),
            "sample": sample_table(load_frame(manifest.news)),
        },
    )


def read_table(read) -> dg.MetadataValue:
    """Per source: rows read, kept, and dropped by reason."""
    rows = [
        {
            "source": r.uri,
            "rows_read": r.rows_read,
            "rows_kept": r.rows_kept,
            "dropped": ", ".join(f"{n} {reason}" for reason, n in r.dropped.items() if n) or "none",
        }
        for r in read
    ]
    return table(rows, {"source": "string", "rows_read": "int", "rows_kept": "int", "dropped": "string"})


def suite_result(
    report, empty_note: str | None = None, note: str = "", metadata: dict | None = None
) -> dg.AssetCheckResult:
    """A Great Expectations report as a blocking check's result: one row per expectation (``note`` and
    ``metadata`` are added to its description and metadata)."""
    rows = [
        {
            "check": o.check,
            "passed": o.success,
            "observed": str(o.observed_value),
            "unexpected": o.unexpected_count,
            "message": "" if o.success else o.message,
        }
        for o in report.results
    ]
    return dg.AssetCheckResult(
        passed=report.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(
            filter(None, [report.summary() if report.rows or empty_note is None else empty_note, note])
        ),
        metadata={
            **(metadata or {}),
            "rows": dg.MetadataValue.int(report.rows),
            "failed_checks": ", ".join(o.check for o in report.failed()) or "none",
            "results": table(
                rows,
                {"check": "string", "passed": "bool", "observed": "string", "unexpected": "int", "message": "string"},
            ),
        },
    )


@dg.asset_check(
    asset=feedback_labels,
    blocking=True,
    description="The raw-data Great Expectations suite on the feedback labels (bounds relaxed only where a small "
    "labelled batch differs: one row is enough, one class is fine). Rows failing a row-level check (title length, "
    "label) were quarantined by feedback_labels and are not judged here. Fails -> the labels are not merged and "
    "nothing is trained on them; no labels at all passes (nothing to merge).",
)
def feedback_quality_suite(feedback_labels: FeedbackLabels) -> dg.AssetCheckResult:
    from fakenews_ml.stages.feedback import run_feedback_suite

    held = sum(feedback_labels.quarantined_by_reason.values())
    note = f"{held} feedback row(s) quarantined, not merged ({feedback_labels.quarantined_by_reason})" if held else ""
    return suite_result(
        run_feedback_suite(feedback_labels),
        empty_note="no feedback labels to merge",
        note=note,
        metadata={"quarantined_rows": dg.MetadataValue.int(held)},
    )


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas", "great_expectations"},
    code_version=code_version("fakenews_ml.stages.validation"),
    description="The training data that the Great Expectations suite judges (a blocking check: nothing downstream "
    "runs on data that fails it): the raw news plus the feedback labels people gave (a feedback label replaces "
    "a news row with the same headline), with the suite's bounds recorded beside it. No feedback: the same data "
    "version as the raw news alone, so nothing retrains.",
)
def validated_news(
    config: ValidatedNewsConfig, raw_news: RawNews, feedback_labels: FeedbackLabels
) -> dg.Output[ValidatedNews]:
    from fakenews_ml.stages.validation import stage_validated_news

    manifest = stage_validated_news(raw_news, core(config, ValidationConfig), feedback_labels)
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.news.digest),
        metadata={
            **frame_metadata(manifest.news),
            "code_version": manifest.code_version,
            "rows_dropped_while_reading": dg.MetadataValue.int(sum(r.rows_read - r.rows_kept for r in manifest.read)),
            "feedback_rows": dg.MetadataValue.int(manifest.feedback.rows),
            "replaced_by_feedback": dg.MetadataValue.int(manifest.feedback.replaced_rows),
            "rows_by_source": counts_table(manifest.rows_by_source),
            "suite_bounds": json_metadata(manifest.validation_config.model_dump()),
            "sample": sample_table(load_frame(manifest.news)),
        },
    )


@dg.asset_check(
    asset=validated_news,
    blocking=True,
    description="Great Expectations suite: columns, nulls, label set {0,1}, title length bounds, duplicate rate, "
    "class balance. Fails -> nothing downstream runs and the production model stays as it was.",
)
def news_quality_suite(validated_news: ValidatedNews) -> dg.AssetCheckResult:
    from fakenews_ml.stages.validation import run_validation_suite

    return suite_result(run_validation_suite(validated_news))


@dg.asset(
    op_tags=DATA_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "pandas"},
    code_version=code_version("fakenews_ml.stages.splitting"),
    description="Titles deduplicated on their normalised form, then a seeded, stratified train/val/test split; "
    "the test split is the frozen split every model is compared on.",
)
def news_splits(config: NewsSplitsConfig, validated_news: ValidatedNews) -> dg.Output[NewsSplits]:
    from fakenews_ml.stages.splitting import split_validated_news

    manifest = split_validated_news(validated_news, core(config, DataConfig, sources=[]))
    splits = manifest.splits
    rows = [
        {
            "split": name,
            "rows": s.rows,
            "fake_share": s.label_counts.fake_share,
            "fingerprint": s.fingerprint,
            "location": s.location,
        }
        for name, s in splits.items()
    ]
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.fingerprint),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(sum(s.rows for s in splits.values())),
            "code_version": manifest.code_version,
            "splits": table(
                rows,
                {"split": "string", "rows": "int", "fake_share": "float", "fingerprint": "string", "location": "path"},
            ),
            **{f"rows_{name}": dg.MetadataValue.int(s.rows) for name, s in splits.items()},
            **class_balance(splits["test"].label_counts),
            "duplicates_removed": dg.MetadataValue.int(manifest.duplicates_removed),
            "conflicting_labels_removed": dg.MetadataValue.int(manifest.conflicting_labels_removed),
            "test_sample": sample_table(load_frame(splits["test"]), columns=("title", "label")),
        },
    )


@dg.asset_check(
    asset=news_splits,
    blocking=True,
    description="No normalised title appears in two splits (re-checked on the written split files).",
)
def splits_do_not_leak(news_splits: NewsSplits) -> dg.AssetCheckResult:
    from fakenews_ml.stages.splitting import check_split_leakage

    result = check_split_leakage(news_splits)
    examples = [{"pair": pair, "title": title} for pair, titles in result.examples.items() for title in titles]
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="no title in two splits"
        if result.passed
        else f"titles shared between splits: {result.shared_titles}",
        metadata={
            "shared_titles": counts_table(result.shared_titles, "pair"),
            "examples": table(examples, {"pair": "string", "title": "string"}),
            "rows": counts_table(result.rows, "split"),
        },
    )


@dg.asset(
    op_tags=TOKENIZE_STEP,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "numpy"},
    code_version=code_version("fakenews_ml.stages.tokenizing"),
    description="Every split through the encoder's fast tokenizer, stored as ragged int32 arrays (.npz, no pickles).",
)
def tokenized_news(config: TokenizedNewsConfig, news_splits: NewsSplits) -> dg.Output[TokenizedNews]:
    from fakenews_ml.stages.tokenizing import tokenize_news_splits

    manifest = tokenize_news_splits(news_splits, core(config, ModelConfig))
    rows = [{"split": name, **s.model_dump()} for name, s in manifest.splits.items()]
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(manifest.fingerprint),
        metadata={
            "code_version": manifest.code_version,
            "encoder": manifest.encoder_label,
            "max_length": dg.MetadataValue.int(manifest.max_length),
            "vocab_size": dg.MetadataValue.int(manifest.vocab_size),
            "splits": table(
                rows,
                {
                    "split": "string",
                    "rows": "int",
                    "mean_tokens": "float",
                    "max_tokens": "int",
                    "truncated_share": "float",
                    "location": "path",
                },
            ),
            "truncated_share_train": number(manifest.splits["train"].truncated_share),
        },
    )
