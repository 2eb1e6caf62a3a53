"""``Predictor``: batched, length-bucketed inference over a model bundle.

Input rules (documented in the README): each headline must be a string that ``headlines.headline_problem``
accepts (the API's rule too: not empty, some letter or digit, no NUL or lone surrogate); headlines longer
than ``PredictConfig.max_title_chars`` characters are truncated to that many (the model reads at most
``max_length`` tokens anyway); one call takes at most ``PredictConfig.max_batch`` headlines. A headline the
model gives no finite probability for is an InputError naming it, never a silent "real".

A bundle with an out-of-domain profile (``model.domain``) also scores how far each headline lies from the
training data (``ood_score``; ``out_of_domain`` above the profile's threshold), from the embedding the
forward pass computes anyway.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fakenews_ml.bundle import LoadedBundle, load_bundle, read_meta
from fakenews_ml.config import PredictConfig
from fakenews_ml.data.tokenize import TokenizedSplit, tokenize_titles
from fakenews_ml.errors import BundleError, InputError
from fakenews_ml.headlines import headline_problem
from fakenews_ml.model.classifier import WithEmbedding
from fakenews_ml.model.inference import embed_rows, probs_and_embeddings
from fakenews_ml.model.lexical import blend
from fakenews_ml.model.quiet import quiet_loading
from fakenews_ml.model.tracing import trace_classifier
from fakenews_ml.model.weights import VARIANTS

VARIANT_DIR = "variants"


def variant_path(bundle_path: Path | str, variant: str = "auto") -> Path:
    """The bundle directory to serve. ``auto`` = the variant the quantization report recommends (it passed
    its parity bounds and was fastest), else the fp32 bundle itself. A variant name, given or read from
    ``quantization.json``, must be a known variant whose folder lies inside the bundle: a name such as
    ``../other`` or ``/etc`` (or a ``variants/int8`` link leading out) is a BundleError."""
    bundle_path = Path(bundle_path)
    if variant == "fp32":
        return bundle_path
    if variant == "auto":
        report = bundle_path / "quantization.json"
        recommended = _recommended_variant(report)
        if recommended is None or recommended == "fp32":
            return bundle_path
        return _variant_folder(bundle_path, recommended, f"{report}: the recommended variant")
    path = _variant_folder(bundle_path, variant, "variant")
    if not path.is_dir():
        raise BundleError(
            f"{bundle_path} has no {variant!r} variant; run `fakenews quantize --model {bundle_path}` first"
        )
    return path


def _recommended_variant(report: Path):
    if not report.exists():
        return None
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise BundleError(f"{report} is unreadable ({exc}); run `fakenews quantize` again") from None
    if not isinstance(data, dict):
        raise BundleError(f"{report} is not a JSON object; run `fakenews quantize` again")
    return data.get("recommended")


def _variant_folder(bundle_path: Path, name, what: str) -> Path:
    """``<bundle>/variants/<name>``, once ``name`` is shown to be a known variant that stays in the bundle."""
    if not isinstance(name, str) or name not in VARIANTS:
        raise BundleError(
            f"{what} {name!r} is not a variant name (one of {', '.join(VARIANTS)}); a path is never followed"
        )
    path = bundle_path / VARIANT_DIR / name
    # save_bundle writes real folders: a link anywhere on the way may lead out of the bundle
    if path.exists() and path.resolve() != bundle_path.resolve() / VARIANT_DIR / name:
        raise BundleError(f"{path} is a link (to {path.resolve()}), not a folder of the bundle; refusing to load it")
    return path


def check_titles(titles, config: PredictConfig) -> list[str]:
    """Validated (and, past the documented limit, truncated) headlines, or an InputError naming the first problem."""
    if isinstance(titles, str) or not isinstance(titles, Sequence):
        raise InputError("expected a list of headline strings")
    if not titles:
        raise InputError("no headlines given")
    if len(titles) > config.max_batch:
        raise InputError(f"{len(titles)} headlines in one call; the limit is {config.max_batch}")
    checked = []
    for i, title in enumerate(titles):
        if not isinstance(title, str):
            raise InputError(f"headline {i} is {type(title).__name__}, not a string")
        title = title.strip()
        problem = headline_problem(title)
        if problem is not None:
            raise InputError(f"headline {i} {problem}")
        checked.append(title[: config.max_title_chars])
    return checked


@dataclass(frozen=True)
class Scores:
    """One pass's outputs, in input order. ``ood_score``/``out_of_domain`` are None for a bundle without
    an out-of-domain profile."""

    prob_fake: np.ndarray
    label: np.ndarray
    ood_score: np.ndarray | None = None
    out_of_domain: np.ndarray | None = None


def _eager_forward(bundle: LoadedBundle) -> torch.nn.Module:
    """The model's forward, returning the pooled embedding beside the logits when the bundle can score it."""
    return WithEmbedding(bundle.model) if bundle.domain is not None else bundle.model


def _traced_forward(bundle: LoadedBundle) -> torch.nn.Module:
    """The traced forward pass of ``bundle``'s model; the eager model under bf16 autocast, which the
    trace would not keep."""
    if bundle.variant == "bf16":
        return _eager_forward(bundle)
    return trace_classifier(_eager_forward(bundle), bundle.tokenizer.pad_token_id)


class Predictor:
    """Thread-safe: one model, one lock around the forward pass (torch already uses every core)."""

    def __init__(
        self, bundle: LoadedBundle, config: PredictConfig | None = None, forward_model: torch.nn.Module | None = None
    ):
        """``forward_model`` (default: ``bundle.model``, traced when ``config.trace``) computes the logits;
        predictors over one bundle may share one."""
        self.bundle = bundle
        self.config = config or PredictConfig()
        self.max_length = bundle.model_config.max_length
        self.autocast = torch.bfloat16 if bundle.variant == "bf16" else None
        self.forward_model = forward_model or (_traced_forward(bundle) if self.config.trace else _eager_forward(bundle))
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path: Path | str, variant: str = "auto", config: PredictConfig | None = None) -> Predictor:
        path = variant_path(path, variant)
        read_meta(path)  # a clear BundleError before any heavy loading
        with quiet_loading():
            bundle = load_bundle(path)
            try:
                return cls(bundle, config)
            except Exception as exc:  # e.g. a trace that disagrees with the eager model: the bundle's, not ours
                raise BundleError(f"{path}: the model loads but cannot run ({type(exc).__name__}: {exc})") from exc

    @property
    def version(self) -> str:
        return self.bundle.version

    def _tokenized(self, titles: Sequence[str]) -> tuple[list[str], TokenizedSplit]:
        checked = check_titles(titles, self.config)
        flat, offsets = tokenize_titles(checked, self.bundle.tokenizer, self.max_length)
        return checked, TokenizedSplit(
            flat, offsets, np.full(len(checked), -1, np.int8), np.arange(len(checked)).astype(str)
        )

    def embed(self, titles: Sequence[str]) -> np.ndarray:
        """The model's own sentence embeddings of ``titles`` (for embedding drift)."""
        _, split = self._tokenized(titles)
        with self._lock:
            return embed_rows(
                self.bundle.model, split, self.bundle.tokenizer.pad_token_id, self.config.batch_size, self.autocast
            )

    @property
    def domain_threshold(self) -> float | None:
        """The ``ood_score`` above which a headline is out of domain (None without a profile)."""
        return self.bundle.domain.threshold if self.bundle.domain is not None else None

    def predict_proba(self, titles: Sequence[str], progress=None) -> np.ndarray:
        """P(fake): the transformer's, blended with the lexical model's when the bundle has one."""
        return self.score(titles, progress).prob_fake

    def score(self, titles: Sequence[str], progress=None) -> Scores:
        """P(fake), the label and (with a domain profile) the out-of-domain score of each headline."""
        checked, split = self._tokenized(titles)
        with self._lock:
            probs, embeddings = probs_and_embeddings(
                self.forward_model,
                split,
                self.bundle.tokenizer.pad_token_id,
                self.config.batch_size,
                self.autocast,
                progress,
            )
        if self.bundle.lexical is not None:
            probs = blend(probs, self.bundle.lexical.decision(checked), self.bundle.meta["blend"])
        if not np.isfinite(probs).all():
            unscored = np.flatnonzero(~np.isfinite(probs))
            shown = ", ".join(str(i) for i in unscored[:5]) + (", ..." if len(unscored) > 5 else "")
            raise InputError(f"headline(s) {shown}: the model's output is not a number, so they cannot be classified")
        labels = (probs >= self.bundle.threshold).astype(int)
        domain = self.bundle.domain
        if domain is None or embeddings is None:
            return Scores(probs, labels)
        ood = domain.score(embeddings)
        return Scores(probs, labels, ood, domain.flags(ood))

    def classify(self, titles: Sequence[str], progress=None) -> tuple[np.ndarray, np.ndarray]:
        """``prob_fake`` (0..1) and ``label`` (1 = fake) arrays, in input order."""
        scores = self.score(titles, progress)
        return scores.prob_fake, scores.label

    def predict(self, titles: Sequence[str], progress=None) -> pd.DataFrame:
        """One row per headline, in input order: ``prob_fake`` (0..1) and ``label`` (1 = fake); with a
        domain profile also ``ood_score`` and ``out_of_domain``."""
        scores = self.score(titles, progress)
        frame = pd.DataFrame({"prob_fake": scores.prob_fake.astype(float), "label": scores.label})
        if scores.ood_score is not None:
            frame["ood_score"] = scores.ood_score.astype(float)
            frame["out_of_domain"] = scores.out_of_domain.astype(bool)
        return frame


def predict_all(predictor: Predictor, titles: list[str], progress=None) -> pd.DataFrame:
    """``Predictor.predict`` over any number of headlines (files, not API calls): consecutive calls of at
    most ``max_batch`` headlines each, results in input order."""
    step = predictor.config.max_batch
    for i, title in enumerate(titles):  # named by its place in the whole list, not in its call
        problem = headline_problem(title.strip()) if isinstance(title, str) else None
        if problem is not None:
            raise InputError(f"headline {i} {problem}")
    # an empty list still makes one call, so it gets the predictor's own "no headlines" error
    parts = [predictor.predict(titles[i : i + step], progress) for i in range(0, max(len(titles), 1), step)]
    return pd.concat(parts, ignore_index=True)
