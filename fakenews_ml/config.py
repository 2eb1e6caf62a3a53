"""Typed configuration for every hyperparameter and path (Pydantic).

Dagster assets wrap these in ``dg.Config`` so the launchpad shows each field with its default; the CLI
builds them from flags. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The seed project's dataset at its public release (Zenodo record 4561253).
WELFAKE_URL = "https://zenodo.org/records/4561253/files/WELFake_Dataset.csv"
SOURCES_ENV = "FAKENEWS_SOURCES"


def default_sources() -> list[str]:
    """``FAKENEWS_SOURCES`` (comma-separated URIs) when set, else the public WELFake release."""
    raw = os.environ.get(SOURCES_ENV, "")
    return parse_sources(raw) or [WELFAKE_URL]


def parse_sources(raw: str | list[str]) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else raw
    return [item.strip() for item in items if item and item.strip()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    sources: list[str] = Field(default_factory=default_sources, description="URIs: local paths, http(s)://, gs://")
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 42
    max_rows: int | None = Field(None, gt=0, description="Stratified sample of at most this many rows (for quick runs)")

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value):
        return parse_sources(value)


class ValidationConfig(_Strict):
    min_rows: int = Field(20, ge=1)
    min_title_chars: int = Field(3, ge=1)
    max_title_chars: int = Field(1000, ge=10)
    max_title_length_violations: float = Field(0.01, ge=0, le=1, description="Fraction of titles allowed outside the length bounds")
    max_duplicate_rate: float = Field(0.25, ge=0, le=1, description="Largest fraction of rows whose normalised title repeats")
    min_fake_fraction: float = Field(0.05, ge=0, le=1)
    max_fake_fraction: float = Field(0.95, ge=0, le=1)


class ModelConfig(_Strict):
    encoder: str | None = Field(None, description="HF hub id or local folder; None = packaged all-MiniLM-L6-v2")
    max_length: int = Field(48, ge=8, le=512, description="Token budget per headline")
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = Field(0.1, ge=0, lt=1)


class TrainConfig(_Strict):
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(8e-5, gt=0)
    head_learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    class_weighting: Literal["balanced", "none"] = "balanced"
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto = bf16-mixed on CUDA and on CPUs with bf16 support, else 32-true"
    )
    accelerator: str = "auto"
    early_stopping_patience: int = Field(2, ge=1)
    max_steps: int = Field(-1, description="-1 = run all epochs; a small number for smoke runs")
    val_check_interval: float = Field(1.0, gt=0, le=1.0)
    seed: int = 42
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; None = all cores")
    progress_bar: bool = True


class QuantizeConfig(_Strict):
    variants: list[Literal["int8", "bf16"]] = Field(default_factory=lambda: ["int8", "bf16"])
    max_accuracy_drop: float = Field(0.01, ge=0, le=1, description="Largest accuracy loss vs fp32 (fraction)")
    min_agreement: float = Field(0.97, ge=0, le=1, description="Smallest share of identical predictions vs fp32")


class PredictConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    max_title_chars: int = Field(1000, ge=1, description="Longer headlines are truncated to this many characters")
    max_batch: int = Field(10_000, ge=1, description="Most headlines one call may classify")


class PipelineConfig(_Strict):
    """Everything ``fakenews train`` needs, in one object."""

    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
