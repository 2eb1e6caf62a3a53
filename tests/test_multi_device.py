"""Data-parallel training: two CPU processes (DDP, gloo) write one complete bundle that agrees with a one-process
run of the same global batch; the batch sampler shares each global batch out between the processes."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from fakenews_ml.bundle import CALIBRATION_TABLE, HELDOUT_TABLE, load_bundle, read_json
from fakenews_ml.config import TrainConfig
from fakenews_ml.data.tokenize import tokenize_splits
from fakenews_ml.model.datamodule import BucketBatchSampler
from fakenews_ml.predict import Predictor
from fakenews_ml.train import strategy_for, train_model

# The same global batch, the same seeded batch order: the runs differ only in the dropout masks each process
# draws and in the class-weighted loss being averaged per half batch. On 32 test rows after 12 steps of the tiny
# BERT that moves the served probabilities by a few thousandths; the bounds below leave room for that and would
# still catch a run that trained on half the data, never synchronised its gradients, or saved untrained weights.
MAX_MEAN_PROB_DIFF = 0.03
MAX_ROC_AUC_DIFF = 0.1


def test_processes_share_each_global_batch():
    lengths = np.random.default_rng(0).integers(3, 30, size=203)
    whole = list(BucketBatchSampler(lengths, 8, shuffle=True, seed=7, pool=4))
    halves = [list(BucketBatchSampler(lengths, 8, shuffle=True, seed=7, pool=4, rank=r, replicas=2)) for r in (0, 1)]
    assert len(halves[0]) == len(halves[1]) == len(BucketBatchSampler(lengths, 8, True, 7, 4, rank=0, replicas=2))
    # every step: the two shares together are the batch one process would take (a 1-row last batch is dropped)
    kept = [batch for batch in whole if len(batch) >= 2]
    assert len(halves[0]) == len(kept)
    for batch, first, second in zip(kept, *halves, strict=True):
        assert sorted(first + second) == sorted(batch) and abs(len(first) - len(second)) <= 1


def test_batch_must_split_evenly_and_strategy_defaults():
    with pytest.raises(ValidationError, match="does not split evenly"):
        TrainConfig(batch_size=9, devices=2)
    assert strategy_for(TrainConfig()) == "auto"
    assert strategy_for(TrainConfig(devices=2)) == "ddp_spawn"
    assert strategy_for(TrainConfig(devices=2, strategy="ddp")) == "ddp"


def _train(processes: int, root, tiny_frames, tiny_model_config, tiny_tokenizer):
    config = TrainConfig(
        max_steps=12,
        epochs=1,
        batch_size=8,
        progress_bar=False,
        precision="32-true",
        accelerator="cpu",
        devices=processes,
        num_threads=1,
    )
    return train_model(
        tokenize_splits(tiny_frames, tiny_tokenizer, tiny_model_config.max_length),
        tiny_tokenizer,
        tiny_model_config,
        config,
        root / f"bundle{processes}",
        work_dir=root / f"work{processes}",
        heldout=tiny_frames["test"],
        titles={name: frame["title"].tolist() for name, frame in tiny_frames.items()},
    )


@pytest.mark.timeout(600)  # two process start-ups: about a minute on 2 quiet cores, far more on a loaded one
def test_two_processes_write_one_complete_bundle_that_agrees(tmp_path, tiny_frames, tiny_model_config, tiny_tokenizer):
    one = _train(1, tmp_path, tiny_frames, tiny_model_config, tiny_tokenizer)
    two = _train(2, tmp_path, tiny_frames, tiny_model_config, tiny_tokenizer)

    bundle = load_bundle(two.bundle_path)  # complete: checksums, tokenizer, lexical half
    for table in (HELDOUT_TABLE, CALIBRATION_TABLE):
        assert (two.bundle_path / f"{table}.csv").is_file()
    training = read_json(two.bundle_path, "training")
    assert training["processes"] == 2 and training["strategy"] == "ddp_spawn"
    assert two.steps == one.steps == 12  # the global batch is the same, so is the number of steps
    assert two.history and two.history[-1]["step"] == 12  # rank 0's record reached the launching process
    assert read_json(two.bundle_path, "metrics")["test"] == two.test_metrics
    # only rank 0 wrote: one bundle, no staging folder left, the checkpoint folder cleaned up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle1", "bundle2", "work1", "work2"]
    assert not (tmp_path / "work2" / "checkpoints").exists()

    titles = tiny_frames["test"]["title"].tolist()
    probs_one = Predictor(load_bundle(one.bundle_path)).predict_proba(titles)
    probs_two = Predictor(bundle).predict_proba(titles)
    assert np.abs(probs_one - probs_two).mean() <= MAX_MEAN_PROB_DIFF
    assert abs(one.test_metrics["roc_auc"] - two.test_metrics["roc_auc"]) <= MAX_ROC_AUC_DIFF
