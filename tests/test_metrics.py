import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn import metrics as skm

from fakenews_ml.metrics import (
    compute_metrics,
    expected_calibration_error,
    parity_report,
    save_plots,
    tune_threshold,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_perfect_classifier():
    m = compute_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    for key in ("accuracy", "macro_f1", "f1_fake", "precision_fake", "recall_fake", "roc_auc", "pr_auc"):
        assert m[key] == pytest.approx(1.0), key
    assert m["confusion_matrix"] == [[2, 0], [0, 2]]
    assert m["brier"] == pytest.approx(0.025)
    assert (m["n"], m["fake_rate"], m["threshold"]) == (4, 0.5, 0.5)


def test_constant_classifier():
    m = compute_metrics([0, 0, 0, 1], [0.5] * 4)  # 0.5 >= threshold: everything predicted fake
    assert m["confusion_matrix"] == [[0, 3], [0, 1]]
    assert m["accuracy"] == pytest.approx(0.25)
    assert m["f1_fake"] == pytest.approx(0.4)  # 2*1 / (2*1 + 3 + 0)
    assert m["macro_f1"] == pytest.approx(0.2)  # real-class F1 is 0
    assert (m["precision_fake"], m["recall_fake"]) == (0.25, 1.0)
    assert m["roc_auc"] == pytest.approx(0.5)
    assert m["pr_auc"] == pytest.approx(0.25)
    assert m["brier"] == pytest.approx(0.25)


def test_macro_f1_by_hand():
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    p = [0.9, 0.7, 0.3, 0.2, 0.6, 0.4, 0.1, 0.0]  # tp=2 fn=2 fp=1 tn=3
    m = compute_metrics(y, p)
    assert m["confusion_matrix"] == [[3, 1], [2, 2]]
    assert m["f1_fake"] == pytest.approx(4 / 7)
    assert m["macro_f1"] == pytest.approx((4 / 7 + 6 / 9) / 2)
    assert m["accuracy"] == pytest.approx(5 / 8)


def test_matches_sklearn_and_is_json_serialisable():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    m = compute_metrics(y, p, threshold=0.4)
    pred = (p >= 0.4).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["f1_fake"] == pytest.approx(skm.f1_score(y, pred))
    assert m["precision_fake"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall_fake"] == pytest.approx(skm.recall_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert json.loads(json.dumps(m)) == m


def test_single_class_has_no_auc():
    m = compute_metrics([0, 0, 0], [0.1, 0.6, 0.2])
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["confusion_matrix"] == [[2, 1], [0, 0]]
    json.dumps(m)


def test_ece():
    # Bin around 0.2 holds 1 fake in 5; bin around 0.75 holds 3 fakes in 4: perfectly calibrated.
    y = [1, 0, 0, 0, 0, 1, 1, 1, 0]
    p = [0.2] * 5 + [0.75] * 4
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    assert compute_metrics(y, p)["ece"] == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error([1, 0], [0.9, 0.9]) == pytest.approx(0.4)
    # Two bins: 0.9 vs 1/2 observed (weight 1/2), 0.1 vs 0 observed (weight 1/2).
    assert expected_calibration_error([1, 0, 0, 0], [0.9, 0.9, 0.1, 0.1]) == pytest.approx(0.25)


def test_tune_threshold_finds_the_cut_where_half_is_wrong():
    y = [0, 0, 0, 1, 1, 1]
    p = [0.05, 0.1, 0.2, 0.3, 0.35, 0.4]  # at 0.5 everything is "real"
    t = tune_threshold(y, p)
    assert 0.2 < t <= 0.3 and t == pytest.approx(0.25)
    assert compute_metrics(y, p, t)["macro_f1"] == 1.0
    assert compute_metrics(y, p, 0.5)["macro_f1"] < 0.5


def test_tune_threshold_ties_and_degenerate():
    assert tune_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.5  # any cut in (0.2, 0.8] is perfect
    assert tune_threshold([1, 1, 1], [0.1, 0.2, 0.3]) == 0.5
    assert tune_threshold([0, 0], [0.7, 0.9]) == 0.5


def test_tune_threshold_beats_a_fine_grid():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.round(np.clip(rng.normal(0.35 + 0.2 * y, 0.15), 0, 1), 3)
    best = compute_metrics(y, p, tune_threshold(y, p))["macro_f1"]
    grid = max(skm.f1_score(y, (p >= t).astype(int), average="macro") for t in np.linspace(0, 1, 1001))
    assert best >= grid - 1e-12


@pytest.mark.parametrize(
    ("y", "p", "threshold", "message"),
    [
        ([0, 1], [0.5], 0.5, "same length"),
        ([], [], 0.5, "empty"),
        ([0, 1], [0.2, float("nan")], 0.5, "NaN"),
        ([0, 1], [0.2, 1.2], 0.5, r"\[0, 1\]"),
        ([0, 2], [0.2, 0.3], 0.5, "labels 0"),
        ([0, 1], [0.2, 0.3], 1.5, "threshold"),
    ],
)
def test_bad_input_raises(y, p, threshold, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(y, p, threshold)


def _assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1024, path


def test_save_plots_writes_pngs(tmp_path):
    y = [0, 0, 1, 1, 0, 1, 1, 0]
    p = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.7]
    paths = save_plots(y, p, 0.5, tmp_path / "plots")
    assert {path.name for path in paths.values()} == {"confusion_matrix.png", "roc_curve.png", "calibration.png"}
    for path in paths.values():
        _assert_png(path)
    for path in save_plots([1, 1], [0.3, 0.9], 0.5, tmp_path / "one_class").values():
        _assert_png(path)


def test_save_plots_is_thread_safe(tmp_path):
    y, p = [0, 1, 0, 1], [0.2, 0.7, 0.4, 0.9]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: save_plots(y, p, 0.5, tmp_path / str(i)), range(4)))
    for paths in results:
        for path in paths.values():
            _assert_png(path)


def test_parity_report():
    r = parity_report([0, 1, 1, 0], [0.2, 0.6, 0.8, 0.4], [0.25, 0.45, 0.8, 0.4], 0.5)
    assert (r["accuracy_ref"], r["accuracy_variant"]) == (1.0, 0.75)
    assert r["accuracy_delta"] == pytest.approx(-0.25)
    assert r["agreement"] == pytest.approx(0.75)
    assert r["max_abs_prob_diff"] == pytest.approx(0.15)
    assert r["mean_abs_prob_diff"] == pytest.approx(0.05)
    json.dumps(r)
    with pytest.raises(ValueError, match="prob_variant has length 1"):
        parity_report([0, 1], [0.1, 0.9], [0.1], 0.5)
