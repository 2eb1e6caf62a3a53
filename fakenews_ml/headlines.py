"""What counts as a headline, decided in one place: the API, the predictor, the dashboard and feedback all
apply ``headline_problem``, so a title that one door accepts is never refused, or failed, by another.

A headline must be text with at least one visible letter or digit (of any script). Refused, each with a
message that names the problem: an empty or blank title; a NUL character (PostgreSQL cannot store it); a
lone UTF-16 surrogate (``"\\ud800"`` in JSON: not a character, and it cannot be written as UTF-8); and a
title with no letter or digit at all (only emoji, punctuation, or invisible characters such as zero-width
spaces, soft hyphens and Hangul fillers): there are no words for the model to read, and the training data
drops such titles too (``data/splits.py``).
"""

from __future__ import annotations

import re

# Characters that render as nothing. Most are format characters (never word characters); the Hangul
# fillers are letters to Unicode, so they are named here to keep them from passing as a word.
INVISIBLE = "\u00ad\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\u3164\ufeff\uffa0"
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_VISIBLE_WORD_CHAR = re.compile("[^\\W_\u115f\u1160\u3164\uffa0]")


def headline_problem(title: str) -> str | None:
    """Why ``title`` (already stripped) cannot be classified, as the end of a sentence ('is empty'), or
    None when it can. Costs well under a microsecond for an ordinary headline (it runs on the hot path)."""
    if not title:
        return "is empty"
    bad = _NOT_TEXT.search(title)
    if bad is not None:
        if bad.group() == "\x00":
            return "contains a NUL character (\\u0000)"
        return f"contains a lone UTF-16 surrogate ({ascii(bad.group())[1:-1]}), which is not a character"
    if _VISIBLE_WORD_CHAR.search(title) is None:
        return "has no letters or digits (only symbols, emoji or invisible characters)"
    return None


def text_problem(value: str) -> str | None:
    """Why a short text field (an id, a source tag) cannot be stored, or None."""
    bad = _NOT_TEXT.search(value)
    if bad is None:
        return None
    return "contains a NUL character" if bad.group() == "\x00" else "contains a lone UTF-16 surrogate"
