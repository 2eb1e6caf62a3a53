"""The search space: the training hyperparameters a trial samples (within ``SearchConfig``'s bounds), how a
trial's parameters become the model and training configurations, and the seeded samples trials train on."""

from __future__ import annotations

import numpy as np

from fakenews_ml.config import ModelConfig, SearchConfig, TrainConfig

# Each searched float and whether it is sampled on a log scale (learning rates span orders of magnitude).
FLOAT_PARAMS = {
    "learning_rate": True,
    "head_learning_rate": True,
    "dropout": False,
    "rdrop_alpha": False,
    "weight_decay": False,
}
MODEL_PARAMS = frozenset({"dropout"})  # ModelConfig fields; every other parameter is a TrainConfig field


def suggest(trial, config: SearchConfig) -> dict[str, float | int]:
    """Sample one point of the space for an Optuna trial (bounds that are equal fix the parameter)."""
    params: dict[str, float | int] = {
        name: trial.suggest_float(name, getattr(config, f"{name}_min"), getattr(config, f"{name}_max"), log=log)
        for name, log in FLOAT_PARAMS.items()
    }
    params["batch_size"] = int(trial.suggest_categorical("batch_size", sorted(set(config.batch_sizes))))
    return params


def apply_params(
    model_config: ModelConfig, train_config: TrainConfig, params: dict[str, float | int]
) -> tuple[ModelConfig, TrainConfig]:
    """The two configurations with ``params`` in place of their values (validated by the models)."""
    unknown = set(params) - MODEL_PARAMS - set(TrainConfig.model_fields)
    if unknown:
        raise ValueError(f"not a model or training hyperparameter: {sorted(unknown)}")
    model_values = {name: value for name, value in params.items() if name in MODEL_PARAMS}
    train_values = {name: value for name, value in params.items() if name not in MODEL_PARAMS}
    return (
        ModelConfig(**{**model_config.model_dump(), **model_values}),
        TrainConfig(**{**train_config.model_dump(), **train_values}),
    )


def stratified_sample(labels: np.ndarray, rows: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of ``rows`` rows keeping each label's share, every label at least
    once (all rows when there are no more than ``rows``)."""
    labels = np.asarray(labels)
    if rows is None or rows >= len(labels):
        return np.arange(len(labels))
    classes, sizes = np.unique(labels, return_counts=True)
    exact = rows * sizes / len(labels)
    take = np.maximum(np.floor(exact).astype(int), 1)
    # hand out what flooring left over by the largest remainders; take back from the largest if over
    for i in np.argsort(exact - np.floor(exact))[::-1]:
        if take.sum() >= rows:
            break
        take[i] += 1
    while take.sum() > rows:
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=min(n, size), replace=False)
        for label, n, size in zip(classes, take, sizes)
    ]
    return np.sort(np.concatenate(chosen))
