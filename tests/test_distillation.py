"""The distillation recipe's pure parts: the student's depth, which logged titles a student may learn from, and
how they join the train split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fakenews_ml.config import DistillConfig
from fakenews_ml.data.tokenize import TokenizedSplit, tokenize_titles
from fakenews_ml.stages.distillation import _with_unlabelled, student_layers, unlabelled_titles


def test_the_student_keeps_half_the_layers_by_default_and_always_fewer():
    assert student_layers(6, DistillConfig()) == 3
    assert student_layers(2, DistillConfig()) == 1
    assert student_layers(6, DistillConfig(student_layers=2)) == 2
    with pytest.raises(ValueError, match="fewer layers than its teacher, which has 6"):
        student_layers(6, DistillConfig(student_layers=6))
    with pytest.raises(ValueError, match="learn nothing"):
        DistillConfig(soft_weight=0, hard_weight=0)


def test_logged_titles_that_a_split_holds_never_become_training_data():
    splits = {
        "train": pd.DataFrame({"title": ["Senate passes budget"]}),
        "test": pd.DataFrame({"title": ["Miracle cure"]}),
    }
    log = pd.DataFrame({"title": ["MIRACLE  cure", "New title", "new title", "Senate passes budget!", "Other one"]})
    chosen = unlabelled_titles(log, splits, most=5)
    assert "MIRACLE  cure" not in chosen  # a test headline replayed through the API, in other case and spacing
    assert chosen[:1] == ["New title"] and "new title" not in chosen  # duplicates by the same key, newest kept
    assert unlabelled_titles(log, splits, most=1) == ["New title"]
    assert unlabelled_titles(None, splits, most=5) == [] and unlabelled_titles(log, splits, most=0) == []


def test_unlabelled_titles_join_the_train_split_after_its_rows(tiny_tokenizer):
    flat, offsets = tokenize_titles(["budget vote", "council meets"], tiny_tokenizer, 16)
    train = TokenizedSplit(flat, offsets, np.array([0, 1], np.int8), np.array(["a", "b"]))
    joined = _with_unlabelled(train, ["shocking secret exposed"], np.array([1]), tiny_tokenizer, 16)
    assert len(joined) == 3 and joined.labels.tolist() == [0, 1, 1] and joined.ids[-1] == "log-0"
    np.testing.assert_array_equal(joined.row(0), train.row(0))
    np.testing.assert_array_equal(joined.row(2), tokenize_titles(["shocking secret exposed"], tiny_tokenizer, 16)[0])
