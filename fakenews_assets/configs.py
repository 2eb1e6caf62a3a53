"""Launchpad configuration for every asset, derived from the core's Pydantic models.

Each is named after its asset (``<AssetName>Config``), never after the core model it wraps, so the two never
collide: ``TrainedModelConfig`` (launchpad) wraps ``ModelConfig`` + ``TrainConfig`` (core).

Each ``dg.Config`` here is generated from the fields of a ``fakenews_ml.config`` model (same names,
defaults and descriptions), so the launchpad shows every hyperparameter with its default and the two never
drift apart. ``core(...)`` turns the launchpad values back into the core model, which validates them
(bounds, allowed values) with its own error messages.
"""

from __future__ import annotations

import types
import typing
from typing import Literal, get_args, get_origin

import dagster as dg
import pydantic
from pydantic import Field

from fakenews_ml.config import (
    DataConfig,
    DriftConfig,
    GateConfig,
    HyperparameterChoice,
    ModelConfig,
    ProfileConfig,
    QualityBounds,
    QuantizeConfig,
    SearchConfig,
    TrainConfig,
    ValidationConfig,
)

# Chosen by the compute resource (one place decides the device), not per asset.
COMPUTE_FIELDS = ("accelerator", "precision", "num_threads")


def _launchpad_type(annotation):
    """Dagster config types: a Literal inside a list becomes str (the core model still checks the values)."""
    origin = get_origin(annotation)
    if origin is list:
        (item,) = get_args(annotation)
        return list[str] if get_origin(item) is Literal else list[_launchpad_type(item)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _launchpad_type(args[0]) | None
    return annotation


def derive_config(
    name: str, doc: str, *parts: tuple[type[pydantic.BaseModel], tuple[str, ...] | None]
) -> type[dg.Config]:
    """A ``dg.Config`` with the named fields (None = all) of each core model, defaults included."""
    fields = {}
    for model, names in parts:
        for field_name in names if names is not None else tuple(model.model_fields):
            info = model.model_fields[field_name]
            default = info.get_default(call_default_factory=True)
            description = info.description
            if get_origin(info.annotation) is Literal:
                choices = ", ".join(map(str, get_args(info.annotation)))
                description = f"{description + '; ' if description else ''}one of: {choices}"
            fields[field_name] = (_launchpad_type(info.annotation), Field(default, description=description))
    return pydantic.create_model(name, __base__=dg.Config, __doc__=doc, __module__=__name__, **fields)


def core(config: dg.Config, model: type[pydantic.BaseModel], **extra):
    """The core model built from the launchpad values it declares (plus ``extra``)."""
    values = {k: v for k, v in config.model_dump().items() if k in model.model_fields}
    return model(**values, **extra)


class RawNewsConfig(dg.Config):
    """Where the news comes from."""

    sources: list[str] | None = Field(
        None,
        description="URIs (local paths, file://, http(s)://, gs://). Empty: $FAKENEWS_SOURCES (comma-separated) "
        "read when the run starts, else the public WELFake release",
    )


ValidatedNewsConfig = derive_config(
    "ValidatedNewsConfig", "Bounds of the Great Expectations suite that gates the data.", (ValidationConfig, None)
)
NewsSplitsConfig = derive_config(
    "NewsSplitsConfig",
    "Deduplication and the stratified train/val/test split.",
    (DataConfig, tuple(f for f in DataConfig.model_fields if f != "sources")),
)
TokenizedNewsConfig = derive_config(
    "TokenizedNewsConfig",
    "Which encoder's tokenizer, and the token budget per headline.",
    (ModelConfig, ("encoder", "max_length")),
)
TrainedModelConfig = derive_config(
    "TrainedModelConfig",
    "Classifier head and fine-tuning hyperparameters (device and precision come from the compute resource).",
    (ModelConfig, ("pooling", "dropout")),
    (TrainConfig, tuple(f for f in TrainConfig.model_fields if f not in COMPUTE_FIELDS)),
    (HyperparameterChoice, None),
)
HyperparameterSearchConfig = derive_config(
    "HyperparameterSearchConfig",
    "The Optuna study: its budget (trials, time), each trial's short training, and the search space.",
    (SearchConfig, None),
)
QuantizedModelConfig = derive_config(
    "QuantizedModelConfig", "Serving variants and their parity bounds vs fp32.", (QuantizeConfig, None)
)
ModelEvaluationConfig = derive_config("ModelEvaluationConfig", "The champion/challenger gate.", (GateConfig, None))
ReferenceProfileConfig = derive_config("ReferenceProfileConfig", "The reference profile sample.", (ProfileConfig, None))
LiveQualityConfig = derive_config(
    "LiveQualityConfig",
    "When a day's live quality (feedback labels against the served predictions) is judged, and what fails it.",
    (QualityBounds, None),
)

DriftReportConfig = derive_config(
    "DriftReportConfig",
    "How a day of traffic is compared with the reference profile, and when the drift check fails.",
    (DriftConfig, None),
)


class ProductionModelConfig(dg.Config):
    """Promotion itself has no knobs that could bypass the gate; only a note for the promotion history."""

    note: str = Field("", description="Free text recorded with the promotion in promotions.jsonl")
