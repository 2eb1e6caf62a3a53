"""Splits: dedupe on a normalised title before a stratified, seeded, leak-free train/val/test split."""

from __future__ import annotations

import pandas as pd
import pytest

from fakenews_ml.config import DataConfig
from fakenews_ml.data.readers import canonicalize, read_news_file
from fakenews_ml.data.splits import (
    SPLITS,
    SplitResult,
    check_no_leakage,
    deduplicate,
    leaked_titles,
    normalize_title,
    split_news,
)
from fakenews_ml.errors import LeakageError, SchemaError

WORDS = ["senate", "storm", "vaccine", "election", "celebrity", "market", "court", "river", "school", "border"]


def config(**overrides) -> DataConfig:
    return DataConfig(sources=["unused.csv"], **overrides)


def unique_title(i: int) -> str:
    # Distinct after normalisation: the number and the word pair differ.
    return f"{WORDS[i % 10].title()} report {i}: {WORDS[(i // 10) % 10]} update"


def news_frame(n_real: int, n_fake: int, start: int = 0) -> pd.DataFrame:
    titles = [unique_title(start + i) for i in range(n_real + n_fake)]
    labels = [0] * n_real + [1] * n_fake
    return canonicalize(pd.DataFrame({"title": titles, "label": labels}), "synthetic")


def norm_sets(result: SplitResult) -> dict[str, set[str]]:
    return {name: set(part["title"].map(normalize_title)) for name, part in result.frames.items()}


# --- normalize_title ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Trump’s WALL!", "trumps wall"),
        ("Trump's wall", "TRUMPS   WALL..."),
        ("Café Déjà-Vu", "cafe deja vu"),
        ("  Breaking:\tNews\n", "breaking news"),
        ("São Paulo — floods", "sao paulo floods"),
        ("_Italic claim_", "italic claim"),
        ("Straße", "STRASSE"),
    ],
)
def test_normalize_title_folds_case_punctuation_accents(a, b):
    assert normalize_title(a) == normalize_title(b)


def test_normalize_title_exact_form():
    assert normalize_title("Trump’s WALL!") == "trumps wall"
    assert normalize_title("  Café, DÉJÀ vu?! ") == "cafe deja vu"
    assert normalize_title("COVID-19 vaccine 2.0") == "covid 19 vaccine 2 0"


def test_normalize_title_keeps_words_of_every_script():
    # Regression: ASCII-only folding mapped every non-Latin headline to "" (all "duplicates" of each other).
    # Cyrillic letters that look Latin are folded to the Latin letter (near-copies), the others are kept.
    russian, other_russian = "ни чего нового как правильно", "Новости дня"
    japanese = "当ブログでは福岡県内にある不動産会社"
    assert normalize_title(russian) == "hи чeгo hoboгo kak пpabильho"
    assert normalize_title(other_russian) == "hoboctи дhя"
    assert normalize_title(japanese) == japanese  # kana voicing marks are letters, not accents
    assert len({normalize_title(t) for t in (russian, other_russian, japanese)}) == 3


def test_normalize_title_distinguishes_different_headlines():
    assert normalize_title("Storm hits coast") != normalize_title("Storm hits coasts")
    assert normalize_title("Report 12") != normalize_title("Report 1 2")
    assert normalize_title("🔥🔥🔥") == "" and normalize_title("!!!") == ""


# --- deduplicate ----------------------------------------------------------------------------------------


def test_deduplicate_counts_duplicates_and_conflicts():
    frame = canonicalize(
        pd.DataFrame(
            {
                "title": [
                    "Senate passes bill",
                    "SENATE PASSES BILL!",
                    "senate passes bill",  # 2 duplicates
                    "Aliens land in Ohio",
                    "aliens land in ohio",  # conflict: 0 and 1
                    "Markets rally",
                    "Storm ahead",
                    "🔥🔥",  # emoji-only: no words
                ],
                "label": [0, 0, 0, 1, 0, 0, 1, 1],
            }
        ),
        "t",
    )
    deduped, duplicates, conflicts = deduplicate(frame)
    assert duplicates == 2
    assert conflicts == 2
    assert deduped.attrs["empty_titles_removed"] == 1
    assert deduped["title"].tolist() == ["Senate passes bill", "Markets rally", "Storm ahead"]  # first kept
    assert deduped["norm_title"].is_unique
    assert len(frame) == len(deduped) + duplicates + conflicts + 1


def test_deduplicate_real_fakenewsnet(datasets_dir):
    frame = read_news_file(datasets_dir / "fakenewsnet_titles.csv")
    deduped, duplicates, conflicts = deduplicate(frame)
    assert deduped["norm_title"].is_unique
    assert duplicates > 0 and conflicts > 0
    # non-Latin headlines survive (they used to normalise to "" and vanish)
    assert deduped.attrs["empty_titles_removed"] == 0
    assert deduped["title"].str.contains("ни чего нового").any()
    assert len(frame) == len(deduped) + duplicates + conflicts


# --- split_news -----------------------------------------------------------------------------------------


def test_dedupe_happens_before_split_no_leakage():
    base = news_frame(600, 200)
    # Each of the first 100 titles repeated 3 more times in case/punctuation variants, same label.
    variants = []
    for i in range(100):
        title, label = base.loc[i, "title"], int(base.loc[i, "label"])
        variants += [(title.upper(), label), (title.lower() + "!!", label), ("  " + title.replace(":", " -"), label)]
    extra = canonicalize(pd.DataFrame(variants, columns=["title", "label"]), "variants")
    frame = pd.concat([base, extra], ignore_index=True).sample(frac=1, random_state=0).reset_index(drop=True)

    result = split_news(frame, config())

    assert result.duplicates_removed == 300
    assert result.conflicting_labels_removed == 0
    assert sum(result.sizes().values()) == 800
    assert all(not titles for titles in leaked_titles(result.frames).values())
    sets = norm_sets(result)
    assert sum(len(s) for s in sets.values()) == len(set().union(*sets.values())) == 800
    check_no_leakage(result.frames)  # does not raise


def test_conflicting_labels_are_removed_from_every_split():
    frame = news_frame(300, 100)
    conflict = canonicalize(
        pd.DataFrame(
            {"title": ["Moon landing faked", "MOON LANDING FAKED?", "moon landing faked"], "label": [1, 0, 1]}
        ),
        "c",
    )
    result = split_news(pd.concat([frame, conflict], ignore_index=True), config())
    assert result.conflicting_labels_removed == 3
    assert result.duplicates_removed == 0
    assert all("moon landing faked" not in s for s in norm_sets(result).values())


def test_split_is_stratified_and_sized():
    frame = news_frame(1500, 500)
    result = split_news(frame, config(val_fraction=0.1, test_fraction=0.2))
    sizes = result.sizes()
    assert list(sizes) == list(SPLITS)
    assert sizes == {"train": 1400, "val": 200, "test": 400}
    for name, part in result.frames.items():
        assert part["label"].mean() == pytest.approx(0.25, abs=0.01), name
        assert isinstance(part.index, pd.RangeIndex)
        assert list(part.columns[:5]) == ["id", "title", "text", "label", "source"]


def test_split_is_deterministic_for_a_seed_and_varies_across_seeds():
    frame = news_frame(400, 150)
    a = split_news(frame, config(seed=7))
    b = split_news(frame, config(seed=7))
    c = split_news(frame, config(seed=8))
    for name in SPLITS:
        pd.testing.assert_frame_equal(a.frames[name], b.frames[name])
    assert set(a.frames["test"]["id"]) != set(c.frames["test"]["id"])
    assert a.sizes() == c.sizes()


def test_split_does_not_depend_on_sources_argument():
    frame = news_frame(200, 100)
    a = split_news(frame, config())
    b = split_news(frame, DataConfig(sources=["other.csv", "more.csv"]))
    pd.testing.assert_frame_equal(a.frames["test"], b.frames["test"])


def test_split_real_fakenewsnet(datasets_dir):
    frame = read_news_file(datasets_dir / "fakenewsnet_titles.csv")
    result = split_news(frame, config())
    total = sum(result.sizes().values())
    assert total == len(frame) - result.duplicates_removed - result.conflicting_labels_removed
    assert result.sizes()["test"] == pytest.approx(0.1 * total, abs=2)
    overall = pd.concat(result.frames.values())["label"].mean()
    for part in result.frames.values():
        assert part["label"].mean() == pytest.approx(overall, abs=0.005)
    assert all(not titles for titles in leaked_titles(result.frames).values())


# --- leakage --------------------------------------------------------------------------------------------


def leaky_frames() -> dict[str, pd.DataFrame]:
    return {
        "train": pd.DataFrame({"title": ["Storm hits coast", "Markets rally", "Senate votes"], "label": [0, 0, 1]}),
        "val": pd.DataFrame({"title": ["STORM HITS COAST!", "River floods"], "label": [0, 1]}),
        "test": pd.DataFrame({"title": ["markets rally...", "School reopens"], "label": [0, 1]}),
    }


def test_leaked_titles():
    leaks = leaked_titles(leaky_frames())
    assert leaks == {"train&val": ["storm hits coast"], "train&test": ["markets rally"], "val&test": []}


def test_leaked_titles_clean():
    frames = {"train": pd.DataFrame({"title": ["a b"]}), "test": pd.DataFrame({"title": ["c d"]})}
    assert leaked_titles(frames) == {"train&test": []}


def test_check_no_leakage_raises():
    with pytest.raises(LeakageError) as info:
        check_no_leakage(leaky_frames())
    message = str(info.value)
    assert message.startswith("normalised titles shared between splits:")
    assert "train&val: 1 e.g. 'storm hits coast'" in message
    assert "train&test: 1 e.g. 'markets rally'" in message
    assert "val&test" not in message


# --- max_rows and too little data -------------------------------------------------------------------------


def test_max_rows_stratified_sample():
    frame = news_frame(900, 300)
    result = split_news(frame, config(max_rows=400))
    combined = pd.concat(result.frames.values())
    assert len(combined) == 400
    assert combined["label"].mean() == pytest.approx(0.25, abs=0.005)
    assert set(combined["id"]) <= set(frame["id"])
    again = split_news(frame, config(max_rows=400))
    assert set(pd.concat(again.frames.values())["id"]) == set(combined["id"])
    other = split_news(frame, config(max_rows=400, seed=1))
    assert set(pd.concat(other.frames.values())["id"]) != set(combined["id"])


def test_max_rows_is_never_exceeded():
    # Regression: per-class round() could overshoot (115 * 0.5 = 57.5 -> 58 per class = 116 rows).
    frame = news_frame(115, 115)
    result = split_news(frame, config(max_rows=115))
    assert sum(result.sizes().values()) == 115


def test_max_rows_larger_than_data_is_a_no_op():
    frame = news_frame(150, 50)
    assert sum(split_news(frame, config(max_rows=10_000)).sizes().values()) == 200


@pytest.mark.parametrize(("n_real", "n_fake"), [(2, 2), (3, 0), (200, 3)])
def test_too_little_data_raises(n_real, n_fake):
    with pytest.raises(SchemaError, match="need more data of both classes"):
        split_news(news_frame(n_real, n_fake), config())


def test_all_duplicates_leave_too_little_data():
    frame = canonicalize(pd.DataFrame({"title": ["Same headline"] * 50, "label": [1] * 50}), "dup")
    with pytest.raises(SchemaError, match=r"split 'train' has 1 rows and labels \[1\]"):
        split_news(frame, config())


def test_adding_rows_never_moves_a_training_row_into_test():
    """The test split stays a fair yardstick for the champion/challenger gate after feedback is merged:
    no row the champion trained on can land in the new test split."""
    before = norm_sets(split_news(news_frame(300, 100), config()))
    after = norm_sets(
        split_news(pd.concat([news_frame(300, 100), news_frame(150, 150, start=10_000)], ignore_index=True), config())
    )
    assert not (before["train"] & after["test"])
    assert len(before["test"] & after["test"]) >= 0.9 * len(before["test"])
