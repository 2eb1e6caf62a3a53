"""The lexical half of the classifier and its blend with the transformer."""

from __future__ import annotations

import numpy as np
import pytest

from fakenews_ml.bundle import LEXICAL_FILE, load_bundle
from fakenews_ml.errors import BundleError
from fakenews_ml.model.lexical import CROSS_FIT_FOLDS, LexicalModel, blend, cross_fit, fit_blend, logit, word_shapes
from fakenews_ml.predict import Predictor
from fakenews_ml.quantize import quantize_bundle


def test_lexical_model_learns_surface_style_and_round_trips_through_tensors(tiny_frames):
    train, test = tiny_frames["train"], tiny_frames["test"]
    model = LexicalModel.fit(train["title"].tolist(), train["label"].to_numpy())
    scores = model.decision(test["title"].tolist())
    fake, real = scores[test["label"].to_numpy() == 1], scores[test["label"].to_numpy() == 0]
    assert fake.mean() > real.mean()  # the synthetic fakes carry clickbait words
    again = LexicalModel.from_tensors(model.tensors())
    np.testing.assert_allclose(again.decision(test["title"].tolist()), scores, rtol=1e-6)


def test_cross_fit_serves_a_train_plus_val_model_and_scores_val_out_of_fold(tiny_frames):
    from sklearn.model_selection import StratifiedKFold

    train, val = tiny_frames["train"], tiny_frames["val"]
    titles, labels = val["title"].tolist(), val["label"].to_numpy()
    model, val_scores = cross_fit(train["title"].tolist(), train["label"].to_numpy(), titles, labels)
    everything = LexicalModel.fit(train["title"].tolist() + titles, np.concatenate([train["label"].to_numpy(), labels]))
    np.testing.assert_allclose(model.decision(titles), everything.decision(titles), rtol=1e-6)
    # each val row is scored by a model that never saw it: the one fitted on train and the other folds
    folds = StratifiedKFold(CROSS_FIT_FOLDS, shuffle=True, random_state=0).split(titles, labels)
    for fitted, scored in folds:
        without = LexicalModel.fit(
            train["title"].tolist() + [titles[i] for i in fitted],
            np.concatenate([train["label"].to_numpy(), labels[fitted]]),
        )
        np.testing.assert_allclose(val_scores[scored], without.decision([titles[i] for i in scored]), rtol=1e-6)
    assert not np.allclose(val_scores, model.decision(titles))


def test_cross_fit_falls_back_to_train_only_when_val_has_too_few_of_a_class(tiny_frames):
    train, val = tiny_frames["train"], tiny_frames["val"]
    one_fake = val[val["label"] == 0].head(10).index.tolist() + val[val["label"] == 1].head(1).index.tolist()
    titles, labels = val.loc[one_fake, "title"].tolist(), val.loc[one_fake, "label"].to_numpy()
    model, val_scores = cross_fit(train["title"].tolist(), train["label"].to_numpy(), titles, labels)
    train_only = LexicalModel.fit(train["title"].tolist(), train["label"].to_numpy())
    np.testing.assert_allclose(val_scores, train_only.decision(titles), rtol=1e-6)
    np.testing.assert_allclose(model.coef, train_only.coef)


def test_blend_weights_follow_the_more_informative_input():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    informative = np.where(labels == 1, 0.8, 0.2) + rng.normal(0, 0.05, 400).clip(-0.15, 0.15)
    noise = rng.normal(0, 1, 400)
    weights = fit_blend(informative, noise, labels)
    assert weights["transformer"] > 5 * abs(weights["lexical"])
    probs = blend(informative, noise, weights)
    assert probs.dtype == np.float32 and ((probs > 0) & (probs < 1)).all()
    np.testing.assert_allclose(logit(np.array([0.5])), [0.0])


def test_the_default_bundle_blends_and_serves_the_blend(tiny_bundle, tiny_frames):
    bundle = load_bundle(tiny_bundle)
    assert bundle.lexical is not None and (tiny_bundle / LEXICAL_FILE).exists()
    assert set(bundle.meta["blend"]) == {"transformer", "lexical", "bias"}
    assert {"transformer_roc_auc", "lexical_roc_auc"} <= set(bundle.metrics["components"]["test"])
    titles = tiny_frames["test"]["title"].tolist()
    predictor = Predictor(bundle)
    served = predictor.predict_proba(titles)
    transformer_only = Predictor(load_bundle(tiny_bundle))
    transformer_only.bundle.lexical = None
    expected = blend(transformer_only.predict_proba(titles), bundle.lexical.decision(titles), bundle.meta["blend"])
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)


def test_quantized_variants_keep_the_lexical_half(tiny_bundle_copy, tiny_frames):
    quantize_bundle(tiny_bundle_copy, tiny_frames["test"])
    for variant in ("int8", "bf16"):
        loaded = load_bundle(tiny_bundle_copy / "variants" / variant)
        assert loaded.lexical is not None and loaded.meta["blend"] == load_bundle(tiny_bundle_copy).meta["blend"]


def test_a_tampered_lexical_file_is_refused(tiny_bundle_copy):
    path = tiny_bundle_copy / LEXICAL_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="lexical"):
        load_bundle(tiny_bundle_copy)


@pytest.mark.parametrize("scheme", [1, 2, 3])
def test_fast_decision_equals_the_sparse_matrix_definition(tiny_frames, scheme):
    from fakenews_ml.model.lexical import _counts, _tfidf

    train, test = tiny_frames["train"], tiny_frames["test"]
    model = LexicalModel.fit(train["title"].tolist(), train["label"].to_numpy(), scheme=scheme)
    titles = test["title"].tolist() + ["!!!", "one"]  # with titles that share few n-grams with training
    reference = (
        np.asarray(_tfidf(_counts(titles, scheme), model.idf, scheme) @ model.coef, dtype=np.float64) + model.intercept
    )
    np.testing.assert_allclose(model.decision(titles), reference, atol=1e-4)
    assert model.decision(["one"]).shape == (1,)


def test_the_default_scheme_sees_case_that_the_lowercased_one_cannot():
    words = [
        "senate",
        "budget",
        "vote",
        "star",
        "wedding",
        "report",
        "city",
        "council",
        "plan",
        "court",
        "rules",
        "school",
    ]
    rng = np.random.default_rng(0)
    titles, labels = [], []
    for i in range(200):
        title = " ".join(rng.choice(words, 5))
        fake = i % 2
        titles.append(title.title() if fake else title.capitalize())  # same words; only the case differs
        labels.append(fake)
    labels = np.array(labels)
    cased = LexicalModel.fit(titles[:150], labels[:150])
    lowered = LexicalModel.fit(titles[:150], labels[:150], scheme=1)
    accuracy = lambda model: ((model.decision(titles[150:]) > 0) == labels[150:]).mean()  # noqa: E731
    assert cased.scheme == 3 and accuracy(cased) > 0.95
    assert accuracy(lowered) < 0.75


def test_the_default_scheme_knows_a_word_in_any_case():
    """Scheme 2 keeps case only: a word learnt as "Zorblax" is a stranger as "ZORBLAX". Scheme 3 adds the
    lowercased words, so it carries over."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    words = ["senate", "budget", "vote", "star", "wedding", "report", "city", "council", "plan", "court"]

    def titles(fake_word: str, real_word: str, n: int) -> tuple[list[str], np.ndarray]:
        labels = np.arange(n) % 2
        return [" ".join(rng.choice(words, 4)) + " " + (fake_word if fake else real_word) for fake in labels], labels

    train_titles, train_labels = titles("Zorblax", "Today", 200)
    test_titles, test_labels = titles("ZORBLAX", "TODAY", 100)
    auc = lambda model: roc_auc_score(test_labels, model.decision(test_titles))  # noqa: E731
    assert auc(LexicalModel.fit(train_titles, train_labels)) > 0.99
    assert auc(LexicalModel.fit(train_titles, train_labels, scheme=2)) < 0.85


def test_word_shapes_name_each_words_case_and_neighbouring_pairs():
    assert word_shapes("FBI Raids Trump's 2 homes") == ["X", "Xx", "Xx", "d", "x", "X_Xx", "Xx_Xx", "Xx_d", "d_x"]
    assert word_shapes("") == []


def test_weights_saved_before_schemes_had_numbers_load_as_the_lowercased_scheme(tiny_frames):
    train, test = tiny_frames["train"], tiny_frames["test"]
    old = LexicalModel.fit(train["title"].tolist(), train["label"].to_numpy(), scheme=1)
    tensors = old.tensors()
    del tensors["lexical.scheme"]
    again = LexicalModel.from_tensors(tensors)
    assert again.scheme == 1
    np.testing.assert_allclose(again.decision(test["title"].tolist()), old.decision(test["title"].tolist()), rtol=1e-6)


def test_lexical_weights_that_do_not_fit_their_scheme_are_refused(tiny_bundle_copy):
    import json

    from safetensors.torch import load_file, save_file

    from fakenews_ml.data.sources import sha256_file

    path = tiny_bundle_copy / LEXICAL_FILE
    tensors = load_file(str(path))
    tensors["lexical.scheme"][0] = 1  # scheme 1 has no word-shape block: fewer features than these weights
    save_file(tensors, str(path))
    meta = json.loads((tiny_bundle_copy / "bundle.json").read_text())
    meta["lexical_sha256"] = sha256_file(path)
    (tiny_bundle_copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="do not fit feature scheme 1"):
        load_bundle(tiny_bundle_copy)


@pytest.mark.parametrize("scheme", [1, 3])
def test_cached_char_ngrams_count_exactly_what_sklearn_counts(tiny_frames, scheme):
    from fakenews_ml.model.lexical import WordCachedCharNgrams, _vectorizers

    char_block = _vectorizers(scheme)[1]
    assert isinstance(char_block, WordCachedCharNgrams)
    titles = tiny_frames["train"]["title"].tolist() + [
        "Ünïcode  tabs\tand\nnewlines",
        "a",
        "ALL CAPS HEADLINE!!",
        "word word word",
        "   ",
    ]
    cached = WordCachedCharNgrams(char_block.vectorizer)
    for _ in range(2):  # the first call fills the word cache, the second reads it
        difference = cached.transform(titles) - char_block.vectorizer.transform(titles)
        assert difference.nnz == 0 or not difference.data.any()
    assert "word" in cached._words


def test_the_word_cache_is_bounded(monkeypatch):
    from fakenews_ml.model.lexical import WordCachedCharNgrams, _vectorizers

    monkeypatch.setattr(WordCachedCharNgrams, "CACHED_WORDS", 3)
    cached = WordCachedCharNgrams(_vectorizers()[1].vectorizer)
    cached.transform(["one two three"])
    counts = cached.transform(["four five"])
    assert set(cached._words) == {"four", "five"}
    assert not (counts - cached.vectorizer.transform(["four five"])).data.any()


def test_threads_sharing_a_full_word_cache_count_exactly(tiny_frames, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from fakenews_ml.model.lexical import WordCachedCharNgrams, _vectorizers

    monkeypatch.setattr(WordCachedCharNgrams, "CACHED_WORDS", 20)  # emptied again and again
    cached = WordCachedCharNgrams(_vectorizers()[1].vectorizer)
    titles = tiny_frames["train"]["title"].tolist()
    batches = [titles[i : i + 7] for i in range(0, len(titles), 7)] * 3
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(cached.transform, batches))
    for batch, counts in zip(batches, results):
        assert not (counts - cached.vectorizer.transform(batch)).data.any()
