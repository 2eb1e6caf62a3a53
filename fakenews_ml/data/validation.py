"""Data-quality suite for the canonical news frame, run with Great Expectations 1.x directly.

``validate_news`` runs the suite on a copy of the frame (plus a ``norm_title`` helper column for the
duplicate check) and turns GX's result into a small, JSON-friendly ``ValidationReport`` whose
``summary()`` says in plain words what is wrong. A frame with missing columns yields failed checks,
never a KeyError. ``raise_if_failed`` makes the report blocking.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from fakenews_ml.config import ValidationConfig
from fakenews_ml.data.readers import CANONICAL_COLUMNS
from fakenews_ml.data.splits import normalize_title
from fakenews_ml.errors import ValidationFailed

NORM_TITLE = "norm_title"
MAX_EXAMPLES = 5
_EXAMPLE_CHARS = 200  # long article texts would bloat Dagster metadata
# GX 1.x keeps the "current" context in a process-wide singleton (project_manager), which the
# validator reads back; serialise runs so two threads never swap contexts under each other.
_GX_LOCK = threading.Lock()


@dataclass
class ExpectationOutcome:
    """One check's result: ``check`` is our short name, ``expectation`` the GX type."""

    check: str
    expectation: str
    column: str | None
    success: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[dict] = field(default_factory=list)
    error: str | None = None
    kwargs: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        if self.error:
            return f"{self.check}: not checked: {self.error}"
        return f"{self.check}: {_MESSAGES.get(self.check, _generic_message)(self)}"


@dataclass
class ValidationReport:
    success: bool
    rows: int
    results: list[ExpectationOutcome]

    def failed(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.results if not outcome.success]

    def summary(self) -> str:
        """One line per failed check (or a one-line all-clear)."""
        failed = self.failed()
        if not failed:
            return f"all {len(self.results)} data checks passed on {self.rows} rows"
        return "\n".join(outcome.message for outcome in failed)

    def to_dict(self) -> dict:
        return _json_safe(
            {
                "success": self.success,
                "rows": self.rows,
                "failed_checks": [outcome.check for outcome in self.failed()],
                "summary": self.summary(),
                "results": [asdict(outcome) for outcome in self.results],
            }
        )


def build_suite(config: ValidationConfig) -> gx.ExpectationSuite:
    """The suite runs on the canonical frame plus the ``norm_title`` helper column."""
    if config.min_fake_fraction > config.max_fake_fraction:
        raise ValueError(
            f"min_fake_fraction {config.min_fake_fraction} is above max_fake_fraction {config.max_fake_fraction}"
        )
    expectations = _expectations(config)
    # Passed to the constructor: suite.add_expectation() needs an active GX context in 1.x.
    suite = gx.ExpectationSuite(name="news_frame", expectations=expectations)
    # The constructor only logs (and drops) an invalid expectation; a silently missing check is worse.
    if len(suite.expectations) != len(expectations):
        raise ValueError(f"invalid validation bounds, GX rejected part of the suite: {config!r}")
    return suite


def _expectations(config: ValidationConfig) -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*CANONICAL_COLUMNS, NORM_TITLE], exact_match=True, meta={"check": "columns"}
        ),
        gxe.ExpectTableRowCountToBeBetween(min_value=config.min_rows, meta={"check": "row_count"}),
        *[
            gxe.ExpectColumnValuesToNotBeNull(column=column, meta={"check": f"{column}_not_null"})
            for column in ("id", "title", "label")
        ],
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1], meta={"check": "label_values"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="title",
            min_value=config.min_title_chars,
            max_value=config.max_title_chars,
            mostly=1 - config.max_title_length_violations,
            meta={"check": "title_length"},
        ),
        gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(
            column=NORM_TITLE, min_value=1 - config.max_duplicate_rate, meta={"check": "duplicate_rate"}
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="label",
            min_value=config.min_fake_fraction,
            max_value=config.max_fake_fraction,
            meta={"check": "class_balance"},
        ),
    ]


def validate_news(frame: pd.DataFrame, config: ValidationConfig | None = None) -> ValidationReport:
    """Run the suite on a copy of ``frame`` (never mutated) and return a structured report."""
    config = config or ValidationConfig()
    work = _with_helper_columns(frame)
    suite = build_suite(config)
    gx_result = _run_suite(work, suite)
    order = [expectation.meta["check"] for expectation in suite.expectations]
    outcomes = [_outcome(result, work) for result in gx_result.results]
    outcomes.sort(key=lambda outcome: order.index(outcome.check) if outcome.check in order else len(order))
    return ValidationReport(success=bool(gx_result.success), rows=len(frame), results=outcomes)


def dropped_rows_outcome(read, max_share: float) -> ExpectationOutcome:
    """Rows lost while reading each source (``SourceRead`` records) against ``max_share``: a source that loses
    more fails, naming the source, how many rows and why."""
    shares = {r.uri: round(r.dropped_share, 4) for r in read}
    over = [r for r in read if r.dropped_share > max_share]
    return ExpectationOutcome(
        check="rows_dropped",
        expectation="dropped share of each source at most max_dropped_share",
        column=None,
        success=not over,
        observed_value=shares,
        unexpected_count=sum(r.rows_read - r.rows_kept for r in over),
        examples=[{"source": r.uri, "rows_read": r.rows_read, "dropped": r.dropped} for r in over][:MAX_EXAMPLES],
        kwargs={"max_dropped_share": max_share},
    )


def with_outcome(report: ValidationReport, outcome: ExpectationOutcome) -> ValidationReport:
    return ValidationReport(
        success=report.success and outcome.success, rows=report.rows, results=[*report.results, outcome]
    )


def raise_if_failed(report: ValidationReport) -> None:
    if not report.success:
        failed = report.failed()
        raise ValidationFailed(
            f"data validation failed ({len(failed)} of {len(report.results)} checks):\n{report.summary()}",
            result=report,
        )


def _with_helper_columns(frame: pd.DataFrame) -> pd.DataFrame:
    # A fresh 0..n-1 index lets GX's unexpected indices double as row positions for examples.
    work = frame.reset_index(drop=True)
    if "title" in work.columns:
        work = work.assign(**{NORM_TITLE: work["title"].map(normalize_title, na_action="ignore")})
    return work


def _run_suite(work: pd.DataFrame, suite: gx.ExpectationSuite):
    with _GX_LOCK:
        context = gx.get_context(mode="ephemeral")
        # Progress bars would spam Dagster logs and CI output.
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = context.data_sources.add_pandas("news").add_dataframe_asset("news_frame")
        batch = asset.add_batch_definition_whole_dataframe("whole_frame").get_batch(
            batch_parameters={"dataframe": work}
        )
        # SUMMARY keeps results small on 75k rows; index lists give us a few example rows.
        return batch.validate(
            suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
        )


def _outcome(result, work: pd.DataFrame) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
    details = result.result or {}
    outcome = ExpectationOutcome(
        check=(config.meta or {}).get("check", config.type),
        expectation=config.type,
        column=kwargs.get("column"),
        success=bool(result.success),
        observed_value=details.get("observed_value"),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        kwargs=kwargs,
    )
    if not outcome.success:
        outcome.error = _error_message(result, work, outcome.column)
        outcome.examples = _example_rows(work, details.get("partial_unexpected_index_list") or [])
    if outcome.check == "columns":
        _hide_helper_column(outcome, details)
    elif outcome.check == "duplicate_rate" and outcome.error is None:
        _describe_duplicates(outcome, work)
    return outcome


def _error_message(result, work: pd.DataFrame, column: str | None) -> str | None:
    """GX reports a check it could not run (e.g. a missing column) as a failure with exception info."""
    info = result.exception_info or {}
    # Single expectations carry the info directly; suite runs key it by metric id.
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    if not messages:
        return None
    source_column = "title" if column == NORM_TITLE else column
    if source_column and source_column not in work.columns:
        return f"column {source_column!r} is missing"
    return messages[0]


def _example_rows(work: pd.DataFrame, index_list: list) -> list[dict]:
    positions = [i for i in index_list if isinstance(i, (int, np.integer))][:MAX_EXAMPLES]
    columns = [c for c in work.columns if c != NORM_TITLE]
    return _records(work.iloc[positions][columns])


def _hide_helper_column(outcome: ExpectationOutcome, details: dict) -> None:
    """The helper column is our own addition: report columns as the caller's frame has them."""
    if isinstance(outcome.observed_value, list):
        outcome.observed_value = [c for c in outcome.observed_value if c != NORM_TITLE]
    mismatched = (details.get("details") or {}).get("mismatched") or {}
    outcome.kwargs["column_set"] = list(CANONICAL_COLUMNS)
    visible = {kind: [c for c in columns if c != NORM_TITLE] for kind, columns in mismatched.items()}
    outcome.kwargs["mismatched"] = {kind: columns for kind, columns in visible.items() if columns}


def _describe_duplicates(outcome: ExpectationOutcome, work: pd.DataFrame) -> None:
    """GX only gives the unique proportion; count the repeated rows and show a few of them."""
    norm = work[NORM_TITLE].dropna()
    if norm.empty:
        outcome.observed_value = None  # GX says 0.0 here, which would read as "all duplicates"
    repeats = norm.duplicated(keep="first")
    outcome.unexpected_count = int(repeats.sum())
    outcome.unexpected_percent = 100.0 * outcome.unexpected_count / len(norm) if len(norm) else 0.0
    if not outcome.success:
        # One row for each of the most repeated titles, with how often it occurs.
        counts = norm.value_counts()
        top = counts[counts > 1].head(MAX_EXAMPLES)
        first_rows = [int(norm.index[norm == title][0]) for title in top.index]
        outcome.examples = [{**row, "repeats": int(count)} for row, count in zip(_example_rows(work, first_rows), top)]


def _records(rows: pd.DataFrame) -> list[dict]:
    return [{key: _short(value) for key, value in row.items()} for row in rows.to_dict(orient="records")]


def _short(value):
    if isinstance(value, str) and len(value) > _EXAMPLE_CHARS:
        return value[:_EXAMPLE_CHARS] + "…"
    return value


def _json_safe(value):
    """Plain Python types only (numpy scalars, pd.NA and NaN become ints/floats/None)."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ----- human messages, one per check -------------------------------------------------------------


def _percent(outcome: ExpectationOutcome) -> str:
    return f"{outcome.unexpected_percent:.2f}%" if outcome.unexpected_percent is not None else "?%"


def _example_ids(outcome: ExpectationOutcome) -> str:
    ids = [str(row.get("id")) for row in outcome.examples if row.get("id") is not None]
    return f"; e.g. id {', '.join(ids[:3])}" if ids else ""


def _columns_message(outcome: ExpectationOutcome) -> str:
    mismatched = outcome.kwargs.get("mismatched") or {}
    parts = [f"{kind} {columns}" for kind, columns in mismatched.items() if columns]
    return f"{'; '.join(parts) or 'columns differ'} (expected {', '.join(CANONICAL_COLUMNS)})"


def _row_count_message(outcome: ExpectationOutcome) -> str:
    return f"{outcome.observed_value} rows, need at least {outcome.kwargs.get('min_value')}"


def _not_null_message(outcome: ExpectationOutcome) -> str:
    return f"{outcome.unexpected_count} null {outcome.column} value(s) ({_percent(outcome)} of rows){_example_ids(outcome)}"


def _label_values_message(outcome: ExpectationOutcome) -> str:
    values = sorted({str(row.get("label")) for row in outcome.examples})
    return (
        f"{outcome.unexpected_count} label(s) outside {{0, 1}} ({_percent(outcome)}), "
        f"e.g. values {values}{_example_ids(outcome)}"
    )


def _title_length_message(outcome: ExpectationOutcome) -> str:
    allowed = 100 * (1 - outcome.kwargs.get("mostly", 1.0))
    return (
        f"{outcome.unexpected_count} title(s) ({_percent(outcome)}) outside "
        f"{outcome.kwargs.get('min_value')}..{outcome.kwargs.get('max_value')} characters, "
        f"at most {allowed:.2f}% allowed{_example_ids(outcome)}"
    )


def _duplicate_message(outcome: ExpectationOutcome) -> str:
    if outcome.observed_value is None:
        return "no titles to check"
    allowed = 100 * (1 - outcome.kwargs.get("min_value", 1.0))
    top = [f"{str(row.get('title'))[:60]!r} x{row.get('repeats')}" for row in outcome.examples[:2]]
    return (
        f"{outcome.unexpected_count} row(s) ({_percent(outcome)}) repeat a normalised title, "
        f"at most {allowed:.2f}% allowed; e.g. {', '.join(top)}"
    )


def _class_balance_message(outcome: ExpectationOutcome) -> str:
    observed = outcome.observed_value
    if observed is None:
        return "no labels to check"
    share = f"{100 * observed:.1f}%" if isinstance(observed, (int, float)) else str(observed)
    low, high = outcome.kwargs.get("min_value"), outcome.kwargs.get("max_value")
    return f"{share} of rows are fake (label mean {observed}), allowed {100 * low:.0f}%..{100 * high:.0f}%"


def _rows_dropped_message(outcome: ExpectationOutcome) -> str:
    limit = outcome.kwargs["max_dropped_share"]
    if outcome.success:
        return f"no source lost more than {limit:.0%} of its rows while being read"

    def lost(example: dict) -> str:
        reasons = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in example["dropped"].items() if n)
        return f"{example['source']}: {sum(example['dropped'].values())} of {example['rows_read']} rows dropped ({reasons})"

    return (
        f"sources lost more than {limit:.0%} of their rows while being read: {'; '.join(map(lost, outcome.examples))}"
    )


def _generic_message(outcome: ExpectationOutcome) -> str:
    return f"{outcome.expectation} on {outcome.column}: observed {outcome.observed_value}"


_MESSAGES = {
    "columns": _columns_message,
    "row_count": _row_count_message,
    "id_not_null": _not_null_message,
    "title_not_null": _not_null_message,
    "label_not_null": _not_null_message,
    "label_values": _label_values_message,
    "title_length": _title_length_message,
    "duplicate_rate": _duplicate_message,
    "class_balance": _class_balance_message,
    "rows_dropped": _rows_dropped_message,
}
