"""The training lifecycle on two dagster-celery workers against one process, on the same data, in one run.

    python bench/celery_lifecycle.py --rows 300        # a tiny sample with a tiny random encoder (seconds a step)
    python bench/celery_lifecycle.py --rows 0          # the full FakeNewsNet titles, the default model (minutes)
    python bench/celery_lifecycle.py --rows 0 --epochs 1   # the same with one epoch of teacher and student

Both runs materialize `full_pipeline` from an empty store. The in-process run uses a local folder; the celery run
uses an emulated bucket (gcp-storage-emulator on 127.0.0.1) as the shared store, this machine's PostgreSQL as the
instance and RabbitMQ as the broker, and two workers with separate empty disks. The ratio is the price of
spreading the steps: task hand-off, every step loading the code, and artifacts passing through the bucket.
Needs PostgreSQL (FAKENEWS_TEST_POSTGRES_URL, default postgres@127.0.0.1/test) and RabbitMQ (127.0.0.1:5672).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy
import yaml
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAKENEWSNET, REPO, machine, markdown_table  # noqa: E402

BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("FAKENEWS_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "NO_GCE_CHECK": "true",
    "DAGSTER_TELEMETRY_DISABLED": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_setup(root: Path, rows: int) -> tuple[Path, dict]:
    """A synthetic sample and a 2-layer random BERT (as the tests use), and a run config that trains on it."""
    import pandas as pd
    from transformers import AutoTokenizer, BertConfig, BertModel

    from fakenews_ml.model.encoder import resolve_encoder

    encoder = root / "tiny_encoder"
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(None))
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=tokenizer.vocab_size,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(str(encoder))
    tokenizer.save_pretrained(str(encoder))
    frame = pd.read_csv(FAKENEWSNET).sample(n=rows, random_state=0)
    sources = root / "sample.csv"
    frame.to_csv(sources, index=False)
    run_config = {
        "ops": {
            "tokenized_news": {"config": {"encoder": str(encoder), "max_length": 24}},
            "trained_model": {"config": {"max_steps": 40, "epochs": 10, "batch_size": 16, "progress_bar": False}},
            "quantized_model": {"config": {"max_accuracy_drop": 0.1, "min_agreement": 0.8}},
            "reference_profile": {"config": {"sample_size": 40}},
        },
    }
    return sources, run_config


def run_job(env: dict, config_file: Path, log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(
            [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "fakenews_assets.definitions",
                "-j",
                "full_pipeline",
                "-c",
                str(config_file),
            ],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300, help="sample this many titles with a tiny encoder; 0 = all")
    parser.add_argument("--epochs", type=int, help="full data only: train teacher and student this many epochs")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="celery_bench_"))
    if args.rows:
        sources, run_config = tiny_setup(root, args.rows)
    else:
        sources, run_config = FAKENEWSNET, {}
        if args.epochs:
            epochs = {"config": {"epochs": args.epochs}}
            run_config = {"ops": {"trained_model": epochs, "distilled_model": epochs}}
    config_file = root / "run_config.yaml"
    config_file.write_text(yaml.safe_dump(run_config))
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FAKENEWS_", "DAGSTER_"))},
        **OFFLINE,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKENEWS_SOURCES": str(sources),
    }

    # one process, a local store, a SQLite instance
    (root / "single_dagster").mkdir()
    single = run_job(
        {**base, "FAKENEWS_HOME": str(root / "single"), "DAGSTER_HOME": str(root / "single_dagster")},
        config_file,
        root / "single.log",
    )

    # two workers: PostgreSQL instance, RabbitMQ, an emulated bucket
    database = f"fakenews_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    instance_url = make_url(POSTGRES).set(drivername="postgresql+psycopg2", database=database)
    dagster_home = root / "celery_dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        yaml.safe_dump(
            {
                "storage": {"postgres": {"postgres_url": instance_url.render_as_string(hide_password=False)}},
                "telemetry": {"enabled": False},
            }
        )
    )
    port, queue = free_port(), f"fakenews_bench_{os.getpid()}"
    (root / "celery.yaml").write_text(yaml.safe_dump({"execution": {"config": {"broker": BROKER}}}))
    emulator = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "gcs_emulator.py"), str(port), "bench"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shared = {
        **base,
        "DAGSTER_HOME": str(dagster_home),
        "FAKENEWS_STORE": "gs://bench/fakenews",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "FAKENEWS_EXECUTOR": "celery",
        "FAKENEWS_CELERY_BROKER": BROKER,
        "FAKENEWS_CELERY_QUEUE": queue,
    }
    subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"],
        env={**shared, "FAKENEWS_HOME": str(root / "init")},
        check=True,
        capture_output=True,
    )  # the schema first: processes creating it at once collide
    workers = [
        subprocess.Popen(
            [
                str(BIN / "dagster-celery"),
                "worker",
                "start",
                "-n",
                name,
                "-y",
                str(root / "celery.yaml"),
                "-q",
                queue,
                "-A",
                "dagster_celery.app",
                "--",
                # the pool the README documents (prefork), one task at a time: with "solo" a long step blocks the
                # broker connection, RabbitMQ drops it and hands the task to the other worker (a second training)
                "--concurrency",
                "1",
            ],
            env={**shared, "FAKENEWS_HOME": str(root / name)},
            cwd=REPO,
            stdout=(root / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name in ("worker_a", "worker_b")
    ]
    try:
        time.sleep(5)  # the workers connect to the broker
        spread = run_job({**shared, "FAKENEWS_HOME": str(root / "launcher")}, config_file, root / "celery.log")
    finally:
        for worker in workers:
            os.killpg(worker.pid, 15)
            worker.wait(timeout=60)
        emulator.terminate()
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    rows = [
        {"run": "one process (in_process executor, local store)", "seconds": round(single, 1), "ratio": 1.0},
        {
            "run": "two celery workers (Postgres, RabbitMQ, bucket store)",
            "seconds": round(spread, 1),
            "ratio": round(spread / single, 2),
        },
    ]
    data = f"{args.rows} titles, tiny encoder" if args.rows else "all FakeNewsNet titles"
    if not args.rows and args.epochs:
        data += f", {args.epochs} epoch(s) of teacher and student"
    print(f"\n{machine()}; data: {data}\n")
    print(markdown_table(rows))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "data": data, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
