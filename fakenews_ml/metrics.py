"""Metrics, threshold tuning, plots and quantization parity for a binary fake-news classifier.

Conventions used throughout: label 1 = fake, 0 = real; a headline is predicted fake when
``prob_fake >= threshold``. Every number returned is a plain Python ``int``/``float``/``None`` so the
dicts go straight into JSON, W&B or Dagster metadata. Plain numpy + scikit-learn + matplotlib only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

ECE_BINS = 15
PLOT_DPI = 110


def _check_labels(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y_true is empty: need at least one example to evaluate")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only labels 0 (real) and 1 (fake)")
    return y.astype(np.int64)


def _check_probs(prob, n: int, name: str = "prob_fake") -> np.ndarray:
    p = np.asarray(prob)
    if p.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {p.shape}")
    if p.size != n:
        raise ValueError(f"{name} has length {p.size} but y_true has length {n}: they must be the same length")
    if p.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {p.dtype}")
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"{name} must be probabilities in [0, 1], got range [{p.min():g}, {p.max():g}]")
    return p


def _check_threshold(threshold) -> float:
    t = float(threshold)
    if not (np.isfinite(t) and 0 <= t <= 1):
        raise ValueError(f"threshold must be a finite number in [0, 1], got {threshold!r}")
    return t


def _validate(y_true, prob_fake) -> tuple[np.ndarray, np.ndarray]:
    y = _check_labels(y_true)
    return y, _check_probs(prob_fake, y.size)


def _f1(tp, fp, fn):
    """F1 = 2tp / (2tp + fp + fn), 0 where undefined (scikit-learn's zero_division=0); vectorised."""
    tp, denom = np.asarray(tp, float), np.asarray(2 * tp + fp + fn, float)
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def _macro_f1(tp, fp, fn, tn):
    """Mean F1 of the fake and the real class (both classes always count, even if absent)."""
    return (_f1(tp, fp, fn) + _f1(tn, fn, fp)) / 2


def tune_threshold(y_true, prob_fake) -> float:
    """Threshold on ``prob_fake`` that maximises macro-F1; use it on the validation split only.

    Every distinct prediction is reachable: the sorted unique probabilities cut [0, 1] into intervals
    of equivalent thresholds, all scored at once from cumulative counts. Each interval is represented
    by 0.5 if it contains 0.5, else by its midpoint; ties between intervals go to the one closest to
    0.5. A single-class ``y_true`` has no meaningful cut and returns 0.5.
    """
    y, p = _validate(y_true, prob_fake)
    if y.min() == y.max():
        return 0.5
    uniq, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=uniq.size)
    cnt = np.bincount(inverse, minlength=uniq.size)
    # Candidate k (0..m) predicts fake for p >= uniq[k]; k = m predicts all real.
    tp = np.append(np.cumsum(pos[::-1])[::-1], 0.0)
    pred_pos = np.append(np.cumsum(cnt[::-1])[::-1], 0)
    fp = pred_pos - tp
    fn, tn = y.sum() - tp, (y.size - y.sum()) - fp
    lo = np.concatenate(([0.0], uniq))  # interval k is (lo[k], hi[k]]; [0, uniq[0]] for k = 0
    hi = np.append(uniq, 1.0)
    valid = hi > lo
    valid[0] = True
    rep = np.where((lo < 0.5) & (hi >= 0.5), 0.5, (lo + hi) / 2)
    score = np.where(valid, _macro_f1(tp, fp, fn, tn), -np.inf)
    best = np.flatnonzero(np.isclose(score, score.max(), rtol=0, atol=1e-12))
    return float(rep[best[np.argmin(np.abs(rep[best] - 0.5))]])


def _reliability(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS):
    """Equal-width bins over ``prob_fake``: (count, mean prob_fake, observed fake rate) per bin."""
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        frac_y = np.bincount(idx, weights=y, minlength=n_bins) / count
    return count, mean_p, frac_y


def expected_calibration_error(y_true, prob_fake, n_bins: int = ECE_BINS) -> float:
    """ECE on ``prob_fake`` (not on the top-label confidence, so it does not depend on the threshold):
    sum over 15 equal-width bins of (bin share) * |observed fake rate - mean prob_fake|."""
    y, p = _validate(y_true, prob_fake)
    count, mean_p, frac_y = _reliability(y, p, n_bins)
    full = count > 0
    return float(np.sum(count[full] / y.size * np.abs(frac_y[full] - mean_p[full])))


def compute_metrics(y_true, prob_fake, threshold: float = 0.5) -> dict:
    """All headline metrics as JSON-ready scalars; ``roc_auc``/``pr_auc`` are None with one class.

    ``macro_f1`` averages over both classes even when one is absent; undefined precision/recall/F1
    count as 0. ``fake_rate`` is the share of true fakes; ``confusion_matrix`` is [[tn, fp], [fn, tp]].
    """
    y, p = _validate(y_true, prob_fake)
    t = _check_threshold(threshold)
    pred = (p >= t).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = int(y.size - tp - fp - fn)
    both = 0 < y.sum() < y.size
    return {
        "accuracy": (tp + tn) / y.size,
        "macro_f1": float(_macro_f1(tp, fp, fn, tn)),
        "f1_fake": float(_f1(tp, fp, fn)),
        "precision_fake": tp / (tp + fp) if tp + fp else 0.0,
        "recall_fake": tp / (tp + fn) if tp + fn else 0.0,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "ece": expected_calibration_error(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n": int(y.size),
        "fake_rate": float(y.mean()),
        "threshold": t,
    }


def save_plots(y_true, prob_fake, threshold: float, out_dir) -> dict[str, Path]:
    """Write ``confusion_matrix.png``, ``roc_curve.png`` and ``calibration.png`` into ``out_dir``.

    Uses ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot global state), so it is safe to
    call from several threads; the figures hold no global references and are freed when dropped.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y, p = _validate(y_true, prob_fake)
    m = compute_metrics(y, p, threshold)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.png" for name in ("confusion_matrix", "roc_curve", "calibration")}

    def new_axes(size=(4.8, 4.2)):
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()

    fig, ax = new_axes()
    cm = np.array(m["confusion_matrix"])
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax)
    for (i, j), value in np.ndenumerate(cm):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > cm.max() / 2 else "black")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["real", "fake"],
        yticklabels=["real", "fake"],
        xlabel="Predicted",
        ylabel="True",
        title=f"Confusion matrix (threshold {m['threshold']:.3f})",
    )
    fig.tight_layout()
    fig.savefig(paths["confusion_matrix"], dpi=PLOT_DPI)

    fig, ax = new_axes()
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    if m["roc_auc"] is not None:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"ROC (AUC = {m['roc_auc']:.3f})")
    else:
        ax.text(0.5, 0.5, "ROC undefined: one class only", ha="center")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths["roc_curve"], dpi=PLOT_DPI)

    fig, ax = new_axes()
    count, mean_p, frac_y = _reliability(y, p)
    full = count > 0
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(mean_p[full], frac_y[full], "o-", label=f"model (ECE = {m['ece']:.3f})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="Mean predicted P(fake)",
        ylabel="Observed fake rate",
        title=f"Reliability diagram ({ECE_BINS} bins)",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(paths["calibration"], dpi=PLOT_DPI)
    return paths


def parity_report(y_true, prob_ref, prob_variant, threshold: float) -> dict:
    """Compare a variant (e.g. an int8 model) with the reference (fp32) on the same examples.

    ``accuracy_delta`` is variant - reference as a fraction (negative = the variant is worse);
    ``agreement`` is the share of examples where both predict the same label.
    """
    y = _check_labels(y_true)
    ref = _check_probs(prob_ref, y.size, "prob_ref")
    var = _check_probs(prob_variant, y.size, "prob_variant")
    t = _check_threshold(threshold)
    pred_ref, pred_var = ref >= t, var >= t
    acc_ref, acc_var = float(np.mean(pred_ref == y)), float(np.mean(pred_var == y))
    diff = np.abs(ref - var)
    return {
        "accuracy_ref": acc_ref,
        "accuracy_variant": acc_var,
        "accuracy_delta": acc_var - acc_ref,
        "agreement": float(np.mean(pred_ref == pred_var)),
        "max_abs_prob_diff": float(diff.max()),
        "mean_abs_prob_diff": float(diff.mean()),
        "n": int(y.size),
        "threshold": t,
    }
