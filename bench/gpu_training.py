"""Training throughput on a GPU against this CPU: our Lightning module and Trainer with the default config
(R-Drop loss, AdamW and schedule, precision ``auto``: bf16-mixed on CUDA and on this CPU), a few hundred
steps over the same length-bucketed batches of FakeNewsNet headlines.

Here: the CPU side, then the folder that the GPU machine needs (the device tool carries at most 64 MiB, so
the encoder travels in bf16 and is trained in fp32 master weights as usual; also the tokenizer, the data,
and wheels of what that machine's image lacks):

    python bench/gpu_training.py --steps 60 --warmup 10 --batch-sizes 32,256 --out bench/results/gpu_training_cpu.json
    python bench/gpu_training.py --pack .gpu_carry

On the GPU machine (the device tool's `run`, with carry [".gpu_carry"]; nothing there can be downloaded):

    python3 -m pip install -q --no-index --no-deps .gpu_carry/wheels/*.whl && PYTHONPATH=. python3 \\
      bench/gpu_training.py --encoder .gpu_carry/encoder --data .gpu_carry/fakenewsnet_titles.csv \\
      --steps 300 --batch-sizes 32,256 --out $OUT/gpu_training.json

Several devices (data-parallel, Lightning's `ddp`: the script runs once per device; the batch sizes are global):
add `--devices 2` (or more) to the command above.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAKENEWSNET  # noqa: E402
from step_timer import StepTimer  # noqa: E402

from fakenews_ml.config import ModelConfig, TrainConfig  # noqa: E402
from fakenews_ml.data.tokenize import TokenizedSplit, tokenize_frame  # noqa: E402
from fakenews_ml.device import describe_device, resolve_precision  # noqa: E402
from fakenews_ml.model.classifier import HeadlineClassifier  # noqa: E402
from fakenews_ml.model.datamodule import make_loader  # noqa: E402
from fakenews_ml.model.encoder import (
    load_tokenizer,  # noqa: E402
    resolve_encoder,  # noqa: E402
)
from fakenews_ml.model.lightning_module import ClassifierModule, balanced_class_weights  # noqa: E402

# What the GPU image lacks of our imports (it has torch, lightning, transformers, pandas, scikit-learn).
DEVICE_WHEELS = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection")
DEVICE_PYTHON = "3.12"


def headlines(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, usecols=["title", "label"], keep_default_na=False)
    return frame[frame["title"].str.strip() != ""].reset_index(drop=True)


class PrebuiltBatches(L.LightningDataModule):
    """``steps`` batches built before the fit (so loading is not timed); with several processes each takes its
    share of every global batch, as training does (``NewsDataModule``)."""

    def __init__(self, train: TokenizedSplit, batch_size: int, pad_token_id: int, steps: int):
        super().__init__()
        self.train, self.batch_size, self.pad_token_id, self.steps = train, batch_size, pad_token_id, steps

    def train_dataloader(self) -> DataLoader:
        rank, replicas = self.trainer.global_rank, self.trainer.world_size
        loader = make_loader(self.train, self.batch_size, self.pad_token_id, True, 0, rank=rank, replicas=replicas)
        batches = list(itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), self.steps))
        # batch_size=None: the loader hands over the pre-built batches as they are
        return DataLoader(batches, batch_size=None)


def is_rank_zero() -> bool:
    """False in the processes Lightning's ``ddp`` starts by running this script again (they only train)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def measure(
    model_config: ModelConfig,
    train: TokenizedSplit,
    pad_token_id: int,
    batch_size: int,
    steps: int,
    warmup: int,
    devices: int = 1,
) -> dict:
    config = TrainConfig(batch_size=batch_size, devices=devices)
    precision = resolve_precision(config.precision, config.accelerator)
    torch.manual_seed(0)
    model = HeadlineClassifier.from_pretrained(model_config).float()  # fp32 master weights, whatever was stored
    weights = balanced_class_weights(np.bincount(train.labels.astype(np.int64), minlength=2))
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=devices,
        # `ddp`: this script runs once per device (a benchmark, not a Dagster step, so re-running it is fine)
        strategy="ddp" if devices > 1 else "auto",
        use_distributed_sampler=False,
        precision=precision,
        max_steps=steps,
        callbacks=[timer],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(
        ClassifierModule(model, config, weights),
        datamodule=PrebuiltBatches(train, batch_size, pad_token_id, steps),
    )
    return {
        "device": describe_device()["name"],
        "devices": devices,
        "precision": precision,
        "batch size": batch_size,  # the global batch: each device takes batch size / devices rows a step
        "timed steps": steps - warmup,
        # rank 0's rows per second, times the devices: every device takes an equal share of each step
        "samples/s": round(timer.samples_per_second * devices, 1),
    }


def pack(out: Path, data: Path) -> None:
    """Everything the GPU machine needs beside the repository, in one folder to carry."""
    from importlib.metadata import version

    from transformers import AutoModel

    for stale in ("encoder", "wheels"):  # only what an earlier pack wrote: ``out`` may hold anything else
        shutil.rmtree(out / stale, ignore_errors=True)
    source = resolve_encoder(None)
    AutoModel.from_pretrained(source).to(torch.bfloat16).save_pretrained(out / "encoder")
    load_tokenizer(ModelConfig()).save_pretrained(out / "encoder")
    shutil.copyfile(data, out / data.name)
    pins = [f"{name}=={version(name)}" for name in DEVICE_WHEELS]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            DEVICE_PYTHON,
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
            str(out / "wheels"),
            *pins,
        ],
        check=True,
    )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB ({', '.join(pins)})")


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--batch-sizes", type=batch_sizes, default=[32], help="comma-separated; 32 is the default config's"
    )
    parser.add_argument(
        "--devices", type=int, default=1, help="devices to train on at once (DDP; the batch sizes are global)"
    )
    parser.add_argument("--encoder", help="encoder folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--data", type=Path, default=FAKENEWSNET)
    parser.add_argument(
        "--pack", type=Path, metavar="DIR", help="write the folder to carry to the GPU machine, and stop"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.data.is_file():
        parser.error(f"no data file at {args.data} (--data)")
    if args.pack:
        pack(args.pack, args.data)
        return
    if args.warmup >= args.steps:
        parser.error("--warmup must be below --steps")
    if args.devices < 1 or any(size % args.devices for size in args.batch_sizes):
        parser.error(f"--devices must be a positive number that divides every batch size ({args.batch_sizes})")
    model_config = ModelConfig(encoder=args.encoder)
    tokenizer = load_tokenizer(model_config)
    train = tokenize_frame(headlines(args.data), tokenizer, model_config.max_length)  # once, for every batch size
    rows = [
        measure(model_config, train, tokenizer.pad_token_id, size, args.steps, args.warmup, args.devices)
        for size in args.batch_sizes
    ]
    if not is_rank_zero():
        return
    print(json.dumps(rows, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"torch": torch.__version__, "device": describe_device(), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
