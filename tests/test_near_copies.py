"""Near-copies cannot straddle splits: titles disguised with compatibility forms, invisible characters or
look-alike letters from other scripts normalise to the same key as the original, so deduplication keeps one
of them and the leakage check sees any that were put in two splits."""

from __future__ import annotations

import pandas as pd
import pytest

from fakenews_ml.config import DataConfig
from fakenews_ml.data.readers import canonicalize, read_news_file
from fakenews_ml.data.splits import CONFUSABLES, check_no_leakage, leaked_titles, normalize_title, split_news
from fakenews_ml.errors import LeakageError

ORIGINAL = "Scientists expose the secret vaccine report"
DISGUISES = {
    "cyrillic a e o p c": "Sсiеntists ехpоsе thе sесrеt vассinе rероrt",
    "cyrillic capitals": "ЅСІЕNTISTS ЕХРОЅЕ ТНЕ ЅЕСRЕТ VАССINЕ RЕРОRТ",
    "greek capitals": "SCΙΕΝΤΙSTS ΕΧPΟSΕ ΤΗΕ SΕCRΕΤ VΑCCΙΝΕ RΕPΟRΤ",
    "greek small": "Sciеntists εxpοse the secret vaccine repοrt".replace("ε", "e"),
    "fullwidth": "Ｓｃｉｅｎｔｉｓｔｓ ｅｘｐｏｓｅ ｔｈｅ ｓｅｃｒｅｔ ｖａｃｃｉｎｅ ｒｅｐｏｒｔ",
    "zero-width spaces": "Scien\u200btists ex\u200cpose the se\u200dcret vac\u2060cine re\ufeffport",
    "soft hyphens": "Scien\u00adtists ex\u00adpose the se\u00adcret vac\u00adcine re\u00adport",
    "bidi controls": "\u202aScientists\u202c expose the \u200esecret\u200f vaccine report",
    "variation selectors": "Scientists\ufe0f expose the secret\ufe0e vaccine report",
    "odd spaces": "Scientists\u00a0expose\u2003the\u2009secret\u3000vaccine\u202freport",
    "accents": "Sciéntists éxposé thé sécrét vàccìnè rêpört",
    "combining marks": "Scientists\u0301 expose\u0308 the secret vaccine report",
    "ligatures and case": "SCIENTISTS EXPOSE THE SECRET VACCINE REPORT".replace("FI", "\ufb01"),
    "punctuation": "Scientists: expose... the 'secret' vaccine report!!!",
    "mixed": "Ｓсiеn\u200btists\u00a0еxpοse thе ΅secret vaccine rероrt",
}


@pytest.mark.parametrize("disguised", list(DISGUISES.values()), ids=list(DISGUISES))
def test_a_disguised_copy_has_the_original_key(disguised):
    assert normalize_title(disguised) == normalize_title(ORIGINAL) == "scientists expose the secret vaccine report"


@pytest.mark.parametrize(
    "a, b",
    [
        ("Storm hits coast", "Storm hits coasts"),
        ("Report 12", "Report 1 2"),
        ("Москва сегодня", "Киев сегодня"),
        ("Ελληνικά νέα σήμερα", "Ελληνικά νέα αύριο"),
    ],
)
def test_different_headlines_keep_different_keys(a, b):
    assert normalize_title(a) != normalize_title(b)


def test_the_confusables_table_maps_letters_to_single_latin_letters():
    for source, target in CONFUSABLES.items():
        assert len(source) == 1 and not source.isascii()
        assert len(target) == 1 and target.isascii() and target.isalpha()
        assert normalize_title(source) == target.lower()


def _frame(titles: list[str], labels: list[int]) -> pd.DataFrame:
    return canonicalize(pd.DataFrame({"title": titles, "label": labels}), "synthetic")


@pytest.mark.parametrize("disguise", list(DISGUISES), ids=list(DISGUISES))
def test_near_copies_are_deduplicated_before_splitting(disguise):
    base = [f"Unrelated headline number {i} about the {('senate', 'storm', 'market')[i % 3]}" for i in range(200)]
    labels = [i % 2 for i in range(200)]
    frame = _frame([*base, ORIGINAL, DISGUISES[disguise]], [*labels, 1, 1])
    result = split_news(frame, DataConfig(sources=["unused"], seed=3))
    assert result.duplicates_removed == 1
    kept = pd.concat(result.frames.values())["title"].map(normalize_title)
    assert (kept == normalize_title(ORIGINAL)).sum() == 1


def test_a_disguised_copy_with_the_other_label_is_a_conflict():
    frame = _frame(
        [*(f"Plain headline {i} of the day" for i in range(100)), ORIGINAL, DISGUISES["mixed"]], [0, 1] * 50 + [1, 0]
    )
    result = split_news(frame, DataConfig(sources=["unused"]))
    assert result.conflicting_labels_removed == 2


@pytest.mark.parametrize("disguise", ["cyrillic a e o p c", "fullwidth", "zero-width spaces", "greek capitals"])
def test_the_leakage_check_catches_a_disguised_copy_in_another_split(disguise):
    frames = {
        "train": pd.DataFrame({"title": [ORIGINAL, "Markets rally"], "label": [1, 0]}),
        "test": pd.DataFrame({"title": [DISGUISES[disguise], "River floods"], "label": [1, 0]}),
    }
    assert leaked_titles(frames) == {"train&test": [normalize_title(ORIGINAL)]}
    with pytest.raises(LeakageError, match="train&test: 1"):
        check_no_leakage(frames)


def test_real_fakenewsnet_splits_are_unchanged(datasets_dir):
    """The stronger key changes 3 of 18,981 FakeNewsNet keys (titles with Cyrillic letters), none of which
    collides with another title: the split is the one the old key gave (measured when this changed)."""
    frame = read_news_file(datasets_dir / "fakenewsnet_titles.csv")
    result = split_news(frame, DataConfig(sources=["unused"]))
    assert result.sizes() == {"train": 15175, "val": 1897, "test": 1897}
    assert (result.duplicates_removed, result.conflicting_labels_removed) == (8, 4)


@pytest.mark.parametrize("title", ["Senate\x00 passes the budget", "🔥🔥🔥", "\u200b\u3164"])
def test_titles_the_predictor_refuses_never_reach_a_split(title):
    from fakenews_ml.data.splits import deduplicate

    frame = _frame([title, "A real headline", "Another real one"], [1, 0, 1])
    deduped, duplicates, conflicts = deduplicate(frame)
    assert deduped["title"].tolist() == ["A real headline", "Another real one"]
    assert deduped.attrs["empty_titles_removed"] == 1 and duplicates == conflicts == 0
