"""Drift features, the reference profile on disk, and the drift check (Evidently report + verdict).

Statistical behaviour is tested on feature frames built directly (fast, no model) and on real rows of
the shared datasets embedded by the session's tiny BERT; model plumbing on the tiny bundle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_news_frame

from fakenews_ml.config import DriftConfig
from fakenews_ml.errors import InputError
from fakenews_ml.monitoring.drift import (
    DRIFT_FEATURES,
    DriftInputError,
    auc_p_value,
    auc_threshold,
    compute_drift,
)
from fakenews_ml.monitoring.reference import (
    EMBEDDINGS_NPY,
    FEATURE_COLUMNS,
    PROFILE_CSV,
    PROFILE_JSON,
    build_reference_profile,
    embedding_matrix,
    feature_frame,
    load_profile,
    save_profile,
    traffic_features,
    window_features,
)
from fakenews_ml.predict import Predictor

HEADLINE_WORDS = [
    "senate",
    "vote",
    "court",
    "star",
    "wins",
    "new",
    "show",
    "trump",
    "clinton",
    "report",
    "says",
    "police",
    "city",
    "judge",
    "market",
    "film",
    "award",
    "actor",
    "election",
    "governor",
    "bill",
    "study",
    "finds",
    "school",
    "storm",
    "fire",
    "team",
    "coach",
]
POST_WORDS = [
    "covid",
    "coronavirus",
    "vaccine",
    "cases",
    "deaths",
    "lockdown",
    "masks",
    "hospital",
    "tested",
    "positive",
    "confirmed",
    "who",
    "pandemic",
    "virus",
    "spread",
    "quarantine",
    "testing",
    "outbreak",
    "infection",
    "symptoms",
    "doctors",
]

# windows of 200 rows (the default minimum) keep the suite fast; the thresholds are calibrated on 500-row
# windows of real traffic by bench/drift_detection.py
SMALL = {"min_current_rows": 100}


def synthetic_features(n: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    """Feature frames without a model: short headlines vs long COVID-style posts, with model outputs and
    embeddings that move with them."""
    rng = np.random.default_rng(seed)
    if shifted:
        titles = [" ".join(rng.choice(POST_WORDS, size=int(rng.integers(20, 40)))) for _ in range(n)]
        prob = rng.beta(5, 2, n)
        emb = rng.normal(0.6, 1.0, (n, 16))
    else:
        titles = [" ".join(rng.choice(HEADLINE_WORDS, size=int(rng.integers(5, 13)))) for _ in range(n)]
        prob = rng.beta(2, 5, n)
        emb = rng.normal(0.0, 1.0, (n, 16))
    frame = feature_frame(titles, prob, (prob >= 0.5).astype(int), emb)
    frame.attrs["model_version"] = "synthetic-1"
    return frame


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return synthetic_features(600, seed=1)


@pytest.fixture(scope="module")
def tiny_predictor(tiny_bundle) -> Predictor:
    return Predictor.from_path(tiny_bundle, "fp32")


# ----- the reference profile ----------------------------------------------------------------------------


def test_reference_profile_is_a_seeded_sample_with_every_feature(tiny_predictor):
    news = make_news_frame(80, seed=7)
    profile = build_reference_profile(news, tiny_predictor, max_rows=50, seed=3)
    assert len(profile) == 50
    assert list(profile.columns[: len(FEATURE_COLUMNS)]) == FEATURE_COLUMNS
    assert set(profile["title"]) <= set(news["title"])
    assert embedding_matrix(profile).shape == (50, 32) and embedding_matrix(profile).dtype == np.float32
    assert (profile["title_length"] == profile["title"].str.len()).all()
    assert (profile["word_count"] == profile["title"].str.split().str.len()).all()
    assert np.allclose(profile["confidence"], np.maximum(profile["prob_fake"], 1 - profile["prob_fake"]))
    expected = tiny_predictor.predict(profile["title"].tolist())
    assert np.allclose(profile["prob_fake"], expected["prob_fake"], atol=1e-6)
    assert (profile["predicted_label"].to_numpy() == expected["label"].to_numpy()).all()
    assert profile.attrs["model_version"] == tiny_predictor.version
    same = build_reference_profile(news, tiny_predictor, max_rows=50, seed=3)
    other = build_reference_profile(news, tiny_predictor, max_rows=50, seed=4)
    assert same["title"].tolist() == profile["title"].tolist()
    assert other["title"].tolist() != profile["title"].tolist()


def test_profile_save_load_round_trip_without_pickle(tiny_predictor, tmp_path):
    news = make_news_frame(40, seed=8)
    news.loc[0, "title"] = 'A "quoted", comma title\nwith a newline NA'
    profile = build_reference_profile(news, tiny_predictor, max_rows=40)
    save_profile(profile, tmp_path / "profile")
    assert {p.name for p in (tmp_path / "profile").iterdir()} == {PROFILE_CSV, EMBEDDINGS_NPY, PROFILE_JSON}
    # plain files: the matrix loads with pickling disabled, the metadata is JSON
    assert np.load(tmp_path / "profile" / EMBEDDINGS_NPY, allow_pickle=False).dtype == np.float32
    meta = json.loads((tmp_path / "profile" / PROFILE_JSON).read_text())
    assert meta["rows"] == 40 and meta["model_version"] == tiny_predictor.version
    loaded = load_profile(tmp_path / "profile")
    pd.testing.assert_frame_equal(loaded, profile)
    assert loaded.attrs["model_version"] == tiny_predictor.version


def test_load_profile_names_a_missing_or_inconsistent_profile(reference, tmp_path):
    with pytest.raises(InputError, match="no reference profile"):
        load_profile(tmp_path / "nowhere")
    save_profile(reference.head(120), tmp_path / "p")
    np.save(tmp_path / "p" / EMBEDDINGS_NPY, np.zeros((3, 16), np.float32))
    with pytest.raises(InputError, match="inconsistent"):
        load_profile(tmp_path / "p")


def test_traffic_features_reuse_logged_predictions_and_embed_with_the_model(tiny_predictor):
    log = pd.DataFrame(
        {
            "title": ["Senate passes the budget", "  ", "Shocking secret exposed !!!"],
            "prob_fake": [0.1, 0.5, 0.9],
            "label": [0, 1, 1],
            "model_version": "whatever",
        }
    )
    features = window_features(log, tiny_predictor)
    assert features["title"].tolist() == ["Senate passes the budget", "Shocking secret exposed !!!"]
    assert features["prob_fake"].tolist() == [0.1, 0.9]  # as logged, not re-scored
    assert features["predicted_label"].tolist() == [0, 1]
    assert features.attrs["dropped_blank"] == 1
    assert np.allclose(embedding_matrix(features), tiny_predictor.embed(features["title"].tolist()), atol=1e-5)
    with pytest.raises(InputError, match="no non-empty titles"):
        traffic_features(["", "   "], tiny_predictor)
    with pytest.raises(InputError, match="lacks column"):
        window_features(log.drop(columns="prob_fake"), tiny_predictor)


# ----- the drift check ----------------------------------------------------------------------------------


def test_same_distribution_windows_do_not_drift(reference, tmp_path):
    for seed in (11, 12):
        result = compute_drift(reference, synthetic_features(200, seed=seed), DriftConfig(), tmp_path / str(seed))
        assert not result.drifted, result.reasons
        assert result.drift_share < 0.5 and not result.embedding_drifted
        # a 200-row window raises both AUC thresholds above their 0.55 floor: noise is wider
        assert result.embedding.threshold > result.embedding.min_auc == 0.55
        assert result.features["title"].threshold > 0.55


def test_shifted_window_drifts_and_writes_parseable_reports(reference, tmp_path):
    result = compute_drift(reference, synthetic_features(200, seed=13, shifted=True), DriftConfig(), tmp_path / "out")
    assert result.drifted
    assert result.embedding_drifted and result.embedding_drift > 0.9
    # confidence = max(p, 1 - p) is the same for Beta(5, 2) and Beta(2, 5) scores: it rightly stays put
    assert {name for name, f in result.features.items() if f.drifted} == set(DRIFT_FEATURES) - {"confidence"}
    assert result.drift_share == pytest.approx(5 / 6)
    assert set(result.features) == set(DRIFT_FEATURES)
    assert result.features["title"].stattest == "abs_text_content_drift" and result.features["title"].drifted
    assert result.features["title_length"].score > 1.0
    assert (result.n_reference, result.n_current) == (600, 200)

    assert result.html_path == tmp_path / "out" / "report.html"
    html = result.html_path.read_text()
    assert "<html" in html.lower() and "embedding_drift_score" in html
    document = json.loads(result.json_path.read_text())  # strict JSON: no NaN
    assert document["summary"]["drifted"] is True
    assert document["summary"] == json.loads(json.dumps(result.to_metadata()))
    tested = {t["name"] for t in document["evidently"]["tests"]}
    assert "Value Drift for column title" in tested and "Value Drift for column embedding_drift_score" in tested
    assert not list((tmp_path / "out").glob(".*partial"))


def test_thresholds_are_configurable_and_flip_the_verdict(reference, tmp_path):
    window = synthetic_features(200, seed=14)
    assert not compute_drift(reference, window, DriftConfig(), tmp_path / "a").drifted
    strict = DriftConfig(num_threshold=1e-6, cat_threshold=1e-6)
    result = compute_drift(reference, window, strict, tmp_path / "b")
    assert result.drifted and result.drift_share >= 0.5 and not result.embedding_drifted

    shifted = synthetic_features(200, seed=15, shifted=True)
    lenient = DriftConfig(drift_share=1.0, per_feature_threshold={"title_length": 1e6}, embedding_threshold=0.999)
    result = compute_drift(reference, shifted, lenient, tmp_path / "c")
    assert not result.drifted
    assert not result.features["title_length"].drifted and result.features["word_count"].drifted


def test_real_covid_posts_drift_from_fakenewsnet_headlines(datasets_dir, tiny_predictor, tmp_path):
    fakenewsnet = pd.read_csv(datasets_dir / "fakenewsnet_titles.csv").sample(n=800, random_state=0)
    covid = pd.read_csv(datasets_dir / "constraint_covid19.csv").sample(n=200, random_state=0)
    reference = build_reference_profile(fakenewsnet.iloc[:600], tiny_predictor, max_rows=600)
    config = DriftConfig()
    same = compute_drift(
        reference, traffic_features(fakenewsnet["title"].iloc[600:].tolist(), tiny_predictor), config, tmp_path / "same"
    )
    assert not same.drifted, same.reasons
    shifted = compute_drift(
        reference, traffic_features(covid["title"].tolist(), tiny_predictor), config, tmp_path / "covid"
    )
    assert shifted.drifted
    assert shifted.features["title"].drifted and shifted.features["title_length"].drifted
    assert shifted.embedding_drift > 0.8


def test_empty_or_too_small_windows_are_refused_with_a_clear_error(reference, tmp_path):
    with pytest.raises(DriftInputError, match="empty"):
        compute_drift(reference, reference.iloc[:0], DriftConfig(), tmp_path)
    with pytest.raises(ValueError, match="at least 200"):  # DriftInputError is a ValueError too
        compute_drift(reference, synthetic_features(150, seed=16), DriftConfig(), tmp_path)
    assert (
        compute_drift(reference, synthetic_features(150, seed=16), DriftConfig(**SMALL), tmp_path / "ok").n_current
        == 150
    )
    with pytest.raises(InputError, match="lacks column"):
        compute_drift(reference, synthetic_features(200, seed=16).drop(columns="confidence"), DriftConfig(), tmp_path)
    with pytest.raises(DriftInputError, match="unknown column"):
        compute_drift(
            reference, synthetic_features(200, seed=16), DriftConfig(per_feature_threshold={"nope": 1}), tmp_path
        )
    assert not (tmp_path / "report.html").exists()


def test_embeddings_of_another_model_are_refused(reference, tmp_path):
    window = synthetic_features(200, seed=17)
    window.attrs["model_version"] = "another-model"
    with pytest.raises(DriftInputError, match="rebuild the reference profile"):
        compute_drift(reference, window, DriftConfig(), tmp_path)
    assert not compute_drift(reference, window, DriftConfig(require_same_model=False), tmp_path).drifted


def test_auc_significance_bound_tightens_with_window_size():
    assert auc_p_value(0.5, 5000, 500) == pytest.approx(0.5)
    assert auc_p_value(0.57, 5000, 500) < 0.001 < auc_p_value(0.54, 5000, 500)
    bounds = [auc_threshold(0.55, 5000, n, 0.001) for n in (100, 200, 500, 5000)]
    assert bounds == sorted(bounds, reverse=True) and bounds[0] > 0.6 and bounds[-1] == 0.55
    assert auc_p_value(auc_threshold(0.5, 5000, 300, 0.001), 5000, 300) == pytest.approx(0.001)
