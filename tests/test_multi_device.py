"""Data-parallel training: two CPU processes (DDP, gloo) write one complete bundle that agrees with a one-process
run of the same global batch; the batch sampler shares each global batch out between the processes."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pytest
from pydantic import ValidationError

from fakenews_ml.bundle import CALIBRATION_TABLE, HELDOUT_TABLE, load_bundle, read_json
from fakenews_ml.config import ModelConfig, TrainConfig
from fakenews_ml.data.tokenize import tokenize_frame, tokenize_splits
from fakenews_ml.model.classifier import HeadlineClassifier
from fakenews_ml.model.datamodule import BucketBatchSampler
from fakenews_ml.model.inference import predict_probs
from fakenews_ml.predict import Predictor
from fakenews_ml.train import strategy_for, train_model

# Both runs train without randomness inside a step (no dropout, no R-Drop, unweighted loss) on the same seeded
# global batches: then the two processes' averaged gradients are the one-process gradient, and the runs differ
# only by the order of floating-point sums (gloo's all-reduce). Measured: probabilities 6e-8 apart, weights
# 1.5e-6 of the distance training moved them. The bounds leave a wide margin for other CPUs and thread counts
# and still fail a run that trained on half the data, never synchronised its gradients or saved untrained
# weights. (With dropout on, each process draws its own masks and the runs agree only statistically.)
MAX_PROB_DIFF = 1e-4
MAX_RELATIVE_WEIGHT_DIFF = 1e-3


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


@pytest.fixture(scope="module")
def deterministic_encoder(tiny_encoder_dir, tmp_path_factory):
    """The tiny encoder without dropout."""
    import json
    import shutil

    path = Path(shutil.copytree(tiny_encoder_dir, tmp_path_factory.mktemp("no_dropout") / "encoder"))
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return ModelConfig(encoder=str(path), max_length=32, dropout=0.0)


def _train(processes: int, root, tiny_frames, model_config, tiny_tokenizer):
    config = TrainConfig(
        max_steps=12,
        epochs=1,
        batch_size=8,
        progress_bar=False,
        precision="32-true",
        accelerator="cpu",
        devices=processes,
        num_threads=1,
        rdrop_alpha=0.0,
        class_weighting="none",
    )
    return train_model(
        tokenize_splits(tiny_frames, tiny_tokenizer, model_config.max_length),
        tiny_tokenizer,
        model_config,
        config,
        root / f"bundle{processes}",
        work_dir=root / f"work{processes}",
        heldout=tiny_frames["test"],
        titles={name: frame["title"].tolist() for name, frame in tiny_frames.items()},
    )


def _distance(a: dict, b: dict) -> float:
    return float(sum(((a[k].float() - b[k].float()) ** 2).sum() for k in a)) ** 0.5


@pytest.mark.timeout(600)  # two process start-ups: about a minute on 2 quiet cores, far more on a loaded one
def test_two_processes_write_one_complete_bundle_that_agrees(
    tmp_path, tiny_frames, deterministic_encoder, tiny_tokenizer
):
    one = _train(1, tmp_path, tiny_frames, deterministic_encoder, tiny_tokenizer)
    two = _train(2, tmp_path, tiny_frames, deterministic_encoder, tiny_tokenizer)

    bundle = load_bundle(two.bundle_path)  # complete: checksums, tokenizer, lexical half
    for table in (HELDOUT_TABLE, CALIBRATION_TABLE):
        assert (two.bundle_path / f"{table}.csv").is_file()
    training = read_json(two.bundle_path, "training")
    assert training["processes"] == 2 and training["strategy"] == "ddp_spawn"
    assert two.steps == one.steps == 12  # the global batch is the same, so is the number of steps
    assert two.history and two.history[-1]["step"] == 12  # rank 0's record reached the launching process
    assert read_json(two.bundle_path, "metrics")["test"] == two.test_metrics
    # only rank 0 wrote: one bundle, no staging folder left, the checkpoint folder cleaned up
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "fakenews_home")
    assert written == ["bundle1", "bundle2", "work1", "work2"]
    assert not (tmp_path / "work2" / "checkpoints").exists()

    reference = load_bundle(one.bundle_path)
    split = tokenize_frame(tiny_frames["test"], tiny_tokenizer, deterministic_encoder.max_length)
    transformer_one = predict_probs(reference.model, split, tiny_tokenizer.pad_token_id)
    transformer_two = predict_probs(bundle.model, split, tiny_tokenizer.pad_token_id)
    assert np.abs(transformer_one - transformer_two).max() <= MAX_PROB_DIFF
    L.seed_everything(TrainConfig().seed, verbose=False)  # the start both runs shared
    start = HeadlineClassifier.from_pretrained(deterministic_encoder).state_dict()
    moved = _distance(start, reference.model.state_dict())
    assert moved > 0 and _distance(reference.model.state_dict(), bundle.model.state_dict()) <= (
        MAX_RELATIVE_WEIGHT_DIFF * moved
    )
    assert abs(one.test_metrics["roc_auc"] - two.test_metrics["roc_auc"]) <= 0.01
    titles = tiny_frames["test"]["title"].tolist()
    served = Predictor(reference).predict_proba(titles), Predictor(bundle).predict_proba(titles)
    assert np.abs(served[0] - served[1]).max() <= MAX_PROB_DIFF


def test_the_launchpad_exposes_the_device_settings():
    from fakenews_assets.configs import TrainedModelConfig, core

    fields = TrainedModelConfig.model_fields
    assert (fields["devices"].default, fields["num_nodes"].default, fields["strategy"].default) == (1, 1, "auto")
    config = core(TrainedModelConfig(devices=2, strategy="ddp_spawn"), TrainConfig, accelerator="cpu")
    assert (config.devices, config.world_size, strategy_for(config)) == (2, 2, "ddp_spawn")
    with pytest.raises(ValidationError, match="strategy"):
        core(TrainedModelConfig(strategy="horovod"), TrainConfig)
