import json
from pathlib import Path

import pandas as pd
import pytest

from fakenews_ml.config import ValidationConfig
from fakenews_ml.data.readers import canonicalize, read_news_file
from fakenews_ml.data.validation import build_suite, raise_if_failed, validate_news
from fakenews_ml.errors import ValidationFailed

REAL_FILE = Path("/work/shared/datasets/fakenewsnet_titles.csv")
WORDS = ["storm", "senate", "vaccine", "market", "election", "celebrity", "court", "climate"]


def news_frame(n: int = 40, fake_every: int = 2) -> pd.DataFrame:
    """A clean canonical frame: distinct titles, balanced labels."""
    raw = pd.DataFrame(
        {
            "title": [f"Report {i}: the {WORDS[i % len(WORDS)]} story number {i}" for i in range(n)],
            "text": [f"body {i}" for i in range(n)],
            "label": [int(i % fake_every == 0) for i in range(n)],
        }
    )
    return canonicalize(raw, "unit-test")


def failed_checks(report) -> list[str]:
    return [outcome.check for outcome in report.failed()]


def outcome_of(report, check: str):
    return next(outcome for outcome in report.results if outcome.check == check)


def test_good_frame_passes_and_is_not_mutated():
    frame = news_frame()
    before = frame.copy(deep=True)
    report = validate_news(frame)
    assert report.success, report.summary()
    assert report.failed() == []
    assert report.rows == 40
    assert "passed" in report.summary()
    pd.testing.assert_frame_equal(frame, before)
    assert list(frame.columns) == list(before.columns)
    raise_if_failed(report)  # no exception


def test_suite_has_every_check():
    suite = build_suite(ValidationConfig())
    checks = [expectation.meta["check"] for expectation in suite.expectations]
    assert checks == [
        "columns",
        "row_count",
        "id_not_null",
        "title_not_null",
        "label_not_null",
        "label_values",
        "title_length",
        "duplicate_rate",
        "class_balance",
    ]


def test_null_title_is_reported_with_example_row():
    frame = news_frame()
    frame.loc[3, "title"] = pd.NA
    report = validate_news(frame)
    assert not report.success
    assert failed_checks(report) == ["title_not_null"]
    outcome = outcome_of(report, "title_not_null")
    assert outcome.unexpected_count == 1
    assert outcome.unexpected_percent == pytest.approx(2.5)
    assert outcome.examples[0]["id"] == frame.loc[3, "id"]
    assert outcome.examples[0]["title"] is None or pd.isna(outcome.examples[0]["title"])
    assert "1 null title" in report.summary()


def test_label_outside_zero_one():
    frame = news_frame()
    frame.loc[[5, 7], "label"] = 2
    report = validate_news(frame)
    assert "label_values" in failed_checks(report)
    outcome = outcome_of(report, "label_values")
    assert outcome.unexpected_count == 2
    assert [row["id"] for row in outcome.examples] == list(frame.loc[[5, 7], "id"])
    assert {row["label"] for row in outcome.examples} == {2}
    assert "2 label(s) outside {0, 1}" in report.summary()


def test_overlong_titles_beyond_allowed_share():
    frame = news_frame()
    long_rows = list(range(0, 40, 4))  # 10 of 40 rows, far over the 1% allowed
    frame.loc[long_rows, "title"] = [f"{i} " + "x" * 1200 for i in long_rows]
    report = validate_news(frame)
    assert failed_checks(report) == ["title_length"]
    outcome = outcome_of(report, "title_length")
    assert outcome.unexpected_count == 10
    assert outcome.unexpected_percent == pytest.approx(25.0)
    assert len(outcome.examples) == 5
    assert all(len(row["title"]) <= 201 for row in outcome.examples)  # examples are truncated
    assert "10 title(s) (25.00%) outside 3..1000 characters" in report.summary()


def test_a_few_overlong_titles_are_tolerated():
    frame = news_frame(n=200)
    frame.loc[0, "title"] = "x" * 1200  # 0.5% <= 1% allowed
    assert validate_news(frame).success


def test_duplicate_titles_after_normalisation():
    frame = news_frame()
    # 24 of 40 rows (60%) become case/punctuation variants of one headline.
    variants = ["Trump's WALL!", "trumps wall", "TRUMPS  WALL...", "Trump’s wall"]
    frame.loc[:23, "title"] = [variants[i % len(variants)] for i in range(24)]
    report = validate_news(frame)
    assert "duplicate_rate" in failed_checks(report)
    outcome = outcome_of(report, "duplicate_rate")
    assert outcome.unexpected_count == 23  # every copy after the first
    assert outcome.unexpected_percent == pytest.approx(57.5)
    assert outcome.observed_value == pytest.approx(17 / 40)
    assert outcome.examples[0]["repeats"] == 24
    assert "repeat a normalised title" in report.summary()


def test_class_balance_out_of_bounds():
    frame = news_frame(n=100)
    frame["label"] = pd.Series([1] * 99 + [0], dtype="int8")
    report = validate_news(frame)
    assert failed_checks(report) == ["class_balance"]
    outcome = outcome_of(report, "class_balance")
    assert outcome.observed_value == pytest.approx(0.99)
    assert "99.0% of rows are fake" in report.summary()


def test_missing_column_is_a_failure_not_a_keyerror():
    frame = news_frame().drop(columns=["title"])
    report = validate_news(frame)
    assert not report.success
    failed = failed_checks(report)
    assert failed[0] == "columns"
    assert {"title_not_null", "title_length", "duplicate_rate"} <= set(failed)
    columns = outcome_of(report, "columns")
    assert columns.kwargs["mismatched"] == {"missing": ["title"]}
    assert "norm_title" not in columns.observed_value
    assert "missing ['title']" in report.summary()
    assert "column 'title' is missing" in outcome_of(report, "title_length").message


def test_extra_column_is_reported():
    frame = news_frame().assign(author="someone")
    report = validate_news(frame)
    assert failed_checks(report) == ["columns"]
    assert outcome_of(report, "columns").kwargs["mismatched"] == {"unexpected": ["author"]}


def test_too_few_rows():
    report = validate_news(news_frame(n=10))
    assert failed_checks(report) == ["row_count"]
    assert outcome_of(report, "row_count").observed_value == 10
    assert "10 rows, need at least 20" in report.summary()


def test_config_bounds_are_used():
    assert not validate_news(news_frame(), ValidationConfig(min_rows=41)).success
    assert validate_news(news_frame(n=10), ValidationConfig(min_rows=10)).success


def test_inverted_class_bounds_are_rejected():
    with pytest.raises(ValueError, match="min_fake_fraction"):
        build_suite(ValidationConfig(min_fake_fraction=0.9, max_fake_fraction=0.1))


def test_report_to_dict_is_json_and_raise_if_failed():
    frame = news_frame()
    frame.loc[3, "title"] = pd.NA
    frame.loc[5, "label"] = 2
    report = validate_news(frame)
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["success"] is False
    assert set(payload["failed_checks"]) == {"title_not_null", "label_values"}
    with pytest.raises(ValidationFailed) as caught:
        raise_if_failed(report)
    assert caught.value.result is report
    assert "title_not_null" in str(caught.value) and "label_values" in str(caught.value)


@pytest.mark.skipif(not REAL_FILE.is_file(), reason="shared dataset not present")
def test_real_fakenewsnet_file_passes():
    report = validate_news(read_news_file(REAL_FILE))
    assert report.success, report.summary()
    assert report.rows > 18_000
