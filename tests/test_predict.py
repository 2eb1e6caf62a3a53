"""The Predictor: input order, labels at the bundle's threshold, input errors, truncation, variant choice."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from fakenews_ml.config import PredictConfig
from fakenews_ml.errors import BundleError, InputError
from fakenews_ml.predict import Predictor, check_titles, variant_path

MIXED_TITLES = [
    "A much longer headline about the senate budget vote that goes on and on for quite a few more words",
    "Shocking!",
    "Council meets",
    "You won't believe what scientists found in the new vaccine this week according to sources",
    "Quarterly earnings report",
    "x",
    "Miracle cure exposed by a local doctor",
    "The minister gives an official statement after the vote in new york",
    "ok",
    "Secret",
    "Bombshell report: they don't want you to know about oil prices",
]


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return Predictor.from_path(tiny_bundle, "fp32", PredictConfig(batch_size=3))


def test_output_order_matches_input_order(predictor):
    lengths = [len(t) for t in MIXED_TITLES]
    assert lengths != sorted(lengths)  # batches are length-sorted internally, so order really is at stake
    together = predictor.predict_proba(MIXED_TITLES)
    one_by_one = np.array([predictor.predict_proba([title])[0] for title in MIXED_TITLES])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    reversed_probs = predictor.predict_proba(MIXED_TITLES[::-1])
    np.testing.assert_allclose(reversed_probs[::-1], together, atol=1e-5)
    assert len(set(np.round(together, 6))) > 1  # distinct outputs: a permutation would be visible


def test_predict_frame_labels_follow_the_bundle_threshold(tiny_bundle):
    predictor = Predictor.from_path(tiny_bundle, "fp32")
    probs = predictor.predict_proba(MIXED_TITLES)
    # put the threshold between the outputs so both labels occur
    predictor.bundle.meta["threshold"] = float(np.sort(probs)[len(probs) // 2])
    frame = predictor.predict(MIXED_TITLES)
    assert list(frame.columns) == ["prob_fake", "label", "ood_score", "out_of_domain"]
    assert frame.index.tolist() == list(range(len(MIXED_TITLES)))
    assert frame["prob_fake"].between(0, 1).all()
    assert frame["label"].tolist() == (frame["prob_fake"] >= predictor.bundle.threshold).astype(int).tolist()
    assert set(frame["label"]) == {0, 1}
    assert str(frame["label"].dtype).startswith("int")


def test_progress_callback_counts_every_headline(predictor):
    seen = []
    predictor.predict_proba(MIXED_TITLES, progress=seen.append)
    assert sum(seen) == len(MIXED_TITLES)
    assert len(seen) == -(-len(MIXED_TITLES) // 3)  # one call per batch


def test_tuples_and_surrounding_whitespace_are_accepted(predictor):
    probs = predictor.predict_proba(("  Council meets  ", "Shocking!"))
    np.testing.assert_allclose(probs, predictor.predict_proba(["Council meets", "Shocking!"]), atol=1e-6)


@pytest.mark.parametrize(
    "titles,message",
    [
        ([], "no headlines"),
        ([""], "headline 0 is empty"),
        (["fine", "   \t\n"], "headline 1 is empty"),
        (["fine", None], "headline 1 is NoneType, not a string"),
        (["fine", "also fine", 42], "headline 2 is int, not a string"),
        ([b"bytes"], "headline 0 is bytes"),
        ("a single string, not a list", "expected a list"),
        (None, "expected a list"),
        (17, "expected a list"),
        ({"title": "x"}, "expected a list"),
    ],
)
def test_bad_input_raises_input_error_naming_the_problem(predictor, titles, message):
    with pytest.raises(InputError, match=message):
        predictor.predict(titles)


def test_over_max_batch_is_refused(tiny_bundle):
    predictor = Predictor.from_path(tiny_bundle, "fp32", PredictConfig(max_batch=3))
    with pytest.raises(InputError, match="4 headlines .* limit is 3"):
        predictor.predict(["a", "b", "c", "d"])
    assert len(predictor.predict(["a", "b", "c"])) == 3


def test_input_errors_are_raised_before_any_model_work(predictor, monkeypatch):
    import fakenews_ml.predict as predict_module

    monkeypatch.setattr(predict_module, "probs_and_embeddings", lambda *a, **k: pytest.fail("model ran on bad input"))
    with pytest.raises(InputError):
        predictor.predict(["good", ""])


def test_one_megabyte_headline_is_truncated_and_predicted(predictor):
    huge = "shocking news about the governor " * 32_000  # ~1 MB
    assert len(huge) > 1_000_000
    assert check_titles([huge], predictor.config) == [huge.strip()[:1000]]
    probs = predictor.predict_proba([huge, "Council meets"])
    assert probs.shape == (2,) and np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs[0], predictor.predict_proba([huge[:1000]])[0], atol=1e-6)


def test_truncation_limit_is_configurable(tiny_bundle):
    config = PredictConfig(max_title_chars=5)
    assert check_titles(["  abcdefgh  "], config) == ["abcde"]


def test_odd_but_valid_headlines_predict(predictor):
    probs = predictor.predict_proba(
        ["🔥 Fire 🔥", "Ünïcödé héadline", "数字 新闻", "Ｆｕｌｌ", "<script>alert(1)</script>"]
    )
    assert np.all((probs >= 0) & (probs <= 1))


def test_concurrent_calls_are_safe_and_consistent(predictor):
    expected = predictor.predict_proba(MIXED_TITLES)
    results, errors = [], []

    def work():
        try:
            results.append(predictor.predict_proba(MIXED_TITLES))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for probs in results:
        np.testing.assert_allclose(probs, expected, atol=1e-6)


# --- which bundle directory is served ---------------------------------------------------------------------


def test_variant_path_choices(tiny_bundle_copy):
    assert variant_path(tiny_bundle_copy, "fp32") == tiny_bundle_copy
    assert variant_path(tiny_bundle_copy, "auto") == tiny_bundle_copy  # never quantized: fp32
    with pytest.raises(BundleError, match="no 'int8' variant.*fakenews quantize"):
        variant_path(tiny_bundle_copy, "int8")
    with pytest.raises(BundleError):
        Predictor.from_path(tiny_bundle_copy, "bf16")


def test_auto_follows_the_quantization_report(tiny_bundle_copy):
    import shutil

    bf16 = tiny_bundle_copy / "variants" / "bf16"
    shutil.copytree(tiny_bundle_copy, bf16, ignore=shutil.ignore_patterns("variants"))
    report = tiny_bundle_copy / "quantization.json"
    report.write_text(json.dumps({"recommended": "bf16"}))
    assert variant_path(tiny_bundle_copy, "auto") == bf16
    assert variant_path(tiny_bundle_copy, "bf16") == bf16
    report.write_text(json.dumps({"recommended": "fp32"}))
    assert variant_path(tiny_bundle_copy, "auto") == tiny_bundle_copy
    assert variant_path(tiny_bundle_copy) == tiny_bundle_copy


def test_from_path_on_a_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match="no such"):
        Predictor.from_path(tmp_path / "nothing-here")


def test_predictor_exposes_the_bundle_version(predictor, tiny_bundle):
    from fakenews_ml.bundle import read_meta

    assert predictor.version == read_meta(tiny_bundle)["version"]
    assert predictor.bundle.variant == "fp32"
    assert predictor.max_length == 32


# --- files are not API calls: any number of rows, in calls of at most max_batch ---------------------------


def test_predict_all_and_evaluate_go_past_max_batch(tiny_bundle, predictor, tiny_frames):
    from fakenews_ml.evaluation import evaluate_predictor
    from fakenews_ml.predict import predict_all

    small = Predictor.from_path(tiny_bundle, "fp32", PredictConfig(max_batch=4, batch_size=3))
    with pytest.raises(InputError, match="limit is 4"):
        small.predict(MIXED_TITLES)
    frame = predict_all(small, MIXED_TITLES)
    assert frame.index.tolist() == list(range(len(MIXED_TITLES)))
    np.testing.assert_allclose(frame["prob_fake"], predictor.predict_proba(MIXED_TITLES), atol=1e-5)
    with pytest.raises(InputError, match="no headlines"):
        predict_all(small, [])
    metrics = evaluate_predictor(small, tiny_frames["val"])
    assert metrics["n"] == len(tiny_frames["val"]) and metrics["variant"] == "fp32"
    reference = evaluate_predictor(predictor, tiny_frames["val"])  # one call, other batch size
    for key in ("accuracy", "macro_f1", "roc_auc", "pr_auc", "ece", "brier"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-5), key
    assert metrics["confusion_matrix"] == reference["confusion_matrix"]


def test_predict_all_names_a_bad_headline_by_its_place_in_the_whole_list(tiny_bundle):
    from fakenews_ml.predict import predict_all

    predictor = Predictor.from_path(tiny_bundle, "fp32", PredictConfig(max_batch=3))
    titles = [f"Headline {i}" for i in range(8)]
    titles[6] = "🔥🔥"
    with pytest.raises(InputError, match="headline 6 has no letters or digits"):
        predict_all(predictor, titles)
