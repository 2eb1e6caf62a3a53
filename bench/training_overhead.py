"""Training-step overhead of our Lightning setup against a minimal hand-written PyTorch loop: same model,
same loss (``training_loss``, R-Drop as configured), same precision, same optimizer and schedule, the very
same batches, in one run.

    python bench/training_overhead.py [--steps 60] [--warmup 10] [--batch-size 32] [--out ...]

Samples/s is measured over the steps after ``--warmup`` in both loops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, train_split  # noqa: E402
from step_timer import StepTimer  # noqa: E402

from fakenews_ml.config import ModelConfig, TrainConfig  # noqa: E402
from fakenews_ml.data.tokenize import tokenize_splits  # noqa: E402
from fakenews_ml.device import resolve_precision  # noqa: E402
from fakenews_ml.model.classifier import HeadlineClassifier  # noqa: E402
from fakenews_ml.model.datamodule import make_loader  # noqa: E402
from fakenews_ml.model.encoder import load_tokenizer  # noqa: E402
from fakenews_ml.model.lightning_module import ClassifierModule, balanced_class_weights, training_loss  # noqa: E402


def hand_loop(batches, model, weights, config, precision, warmup) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(len(batches) * config.warmup_ratio), len(batches))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    use_bf16 = precision == "bf16-mixed"
    samples, started = 0, None
    for i, batch in enumerate(batches):
        if i == warmup:
            started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = training_loss(model, batch, loss_fn, config.rdrop_alpha)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            samples += len(batch["labels"])
    return samples / (time.perf_counter() - started)


def lightning_loop(batches, model, weights, config, precision, warmup) -> float:
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        max_steps=len(batches),
        callbacks=[timer],
        logger=L.loggers.CSVLogger("/tmp/fakenews-bench"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        log_every_n_steps=20,
    )
    # batch_size=None: the loader hands over our pre-built batches as they are
    trainer.fit(ClassifierModule(model, config, weights), train_dataloaders=DataLoader(batches, batch_size=None))
    return timer.samples_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two loops this many times; best of each")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    model_config, config = ModelConfig(), TrainConfig(batch_size=args.batch_size)
    precision = resolve_precision(config.precision)
    tokenizer = load_tokenizer(model_config)
    train = tokenize_splits({"train": train_split()}, tokenizer, model_config.max_length)["train"]
    loader = make_loader(train, args.batch_size, tokenizer.pad_token_id, shuffle=True, seed=0)
    batches = [batch for _, batch in zip(range(args.steps), loader)]  # identical batches for both loops
    weights = balanced_class_weights(
        torch.bincount(torch.from_numpy(train.labels.astype("int64")), minlength=2).numpy()
    )

    speeds = {"hand-written loop": [], "Lightning (ours)": []}
    for _ in range(args.rounds):
        for name, loop in (("hand-written loop", hand_loop), ("Lightning (ours)", lightning_loop)):
            torch.manual_seed(0)
            model = HeadlineClassifier.from_pretrained(model_config)
            speeds[name].append(loop(batches, model, weights, config, precision, args.warmup))
    hand, ours = max(speeds["hand-written loop"]), max(speeds["Lightning (ours)"])
    rows = [
        {"loop": "hand-written loop", "samples/s": round(hand, 1), "overhead": "baseline"},
        {"loop": "Lightning (ours)", "samples/s": round(ours, 1), "overhead": f"{100 * (hand / ours - 1):+.1f}%"},
    ]
    print(f"{args.steps - args.warmup} timed steps of {args.batch_size}, precision {precision}; {machine()}\n")
    print(markdown_table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"machine": machine(), "precision": precision, "rows": rows, "all": speeds}, indent=2)
        )


if __name__ == "__main__":
    main()
