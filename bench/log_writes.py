"""Prediction-log writes per second with concurrent writers: PostgreSQL against SQLite, in one run.

    python bench/log_writes.py [--writers 8] [--seconds 10] [--batches 1,50] [--repeats 3] [--postgres URL] [--out FILE]

Each writer is a process of its own with its own ``PredictionLog`` (as API replicas would be), writing
``--batch`` rows per transaction back to back for ``--seconds``, all released at once. Batch 1 is one
headline per commit (the worst case); batch 50 is what the API's background writer commits under load (it
gathers the rows of many requests every 50 ms). Each measurement starts on a fresh, empty database (a new
SQLite file in a temporary folder; a new database on the PostgreSQL server ``--postgres`` names, dropped
afterwards) and ends by checking that every acknowledged row is in the log once. Backends alternate
across repeats; the table shows the median of each.

Durability differs and is printed with the numbers: SQLite runs in WAL mode with synchronous=NORMAL (no
fsync per commit: an OS crash may drop the last commits), PostgreSQL with its server settings
(synchronous_commit=on by default: every commit is flushed to the WAL on disk). A third column runs
PostgreSQL with synchronous_commit=off for its database: the durability SQLite has here.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table  # noqa: E402

from fakenews_ml.monitoring.prediction_log import PredictionLog  # noqa: E402

# postgresql_async_commit: the same server with synchronous_commit=off for the bench database, the durability
# SQLite's synchronous=NORMAL has (a crash may drop the last commits, never corrupts)
BACKENDS = ("sqlite", "postgresql", "postgresql_async_commit")
DEFAULT_POSTGRES = os.environ.get("FAKENEWS_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def writer(url: str, tag: str, batch: int, seconds: float, start, results) -> None:
    """One writer: ``batch`` rows per transaction until ``seconds`` after the common start."""
    log = PredictionLog(url)
    log.count()  # connect and see the tables before the clock starts
    start.wait()
    deadline = time.perf_counter() + seconds
    written = commits = 0
    while time.perf_counter() < deadline:
        rows = [
            {
                "request_id": f"{tag}-{commits}",
                "title": f"Headline {i} of request {commits} from writer {tag}",
                "prob_fake": 0.25,
                "label": 0,
                "model_version": "bench",
                "origin": "bench",
            }
            for i in range(batch)
        ]
        log.log_predictions(rows, return_ids=False)  # as the API's background writer does
        written += batch
        commits += 1
    results.put((tag, written, commits, time.perf_counter() - deadline + seconds))
    log.close()


def measure(url: str, writers: int, batch: int, seconds: float) -> dict:
    with PredictionLog(url) as log:
        log.count()  # create the tables once, outside the measurement
    context = mp.get_context("spawn")
    start, results = context.Barrier(writers + 1), context.Queue()
    processes = [
        context.Process(target=writer, args=(url, f"w{k}", batch, seconds, start, results)) for k in range(writers)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    reports = [results.get(timeout=seconds + 300) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0, f"a writer failed ({process.exitcode})"
    acknowledged = sum(r[1] for r in reports)
    commits = sum(r[2] for r in reports)
    with PredictionLog(url) as log:
        stored = log.count()
        with log._engine.connect() as conn:  # every row once: no id twice, no request id with a wrong row count
            distinct = conn.execute(sqlalchemy.text("select count(distinct id) from predictions")).scalar_one()
    assert stored == acknowledged == distinct, f"acknowledged {acknowledged}, stored {stored}, distinct ids {distinct}"
    return {
        "rows": acknowledged,
        "commits": commits,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(acknowledged / elapsed, 1),
        "commits_per_s": round(commits / elapsed, 1),
        "lost_rows": acknowledged - stored,
    }


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / f'log-{uuid.uuid4().hex[:8]}.sqlite'}"


class PostgresDatabases:
    """Fresh databases on the server ``admin_url`` points at, dropped on close."""

    def __init__(self, admin_url: str):
        self.admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.url = make_url(admin_url)
        self.names: list[str] = []

    def create(self, synchronous_commit: bool = True) -> str:
        name = f"fakenews_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
            if not synchronous_commit:  # commits return before their WAL is flushed, as SQLite's NORMAL
                conn.execute(sqlalchemy.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        self.names.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def settings(self) -> dict:
        with self.admin.connect() as conn:
            show = {k: conn.execute(sqlalchemy.text(f"show {k}")).scalar_one() for k in ("synchronous_commit", "fsync")}
            show["version"] = conn.execute(sqlalchemy.text("show server_version")).scalar_one()
        return show

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def log_writes(postgres: str, writers: int, seconds: float, batches: list[int], repeats: int) -> dict:
    databases = PostgresDatabases(postgres)
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="fakenews-bench-") as folder:
            for batch in batches:
                for repeat in range(repeats):
                    order = BACKENDS if repeat % 2 == 0 else BACKENDS[::-1]
                    for backend in order:
                        if backend == "sqlite":
                            url = sqlite_url(Path(folder))
                        else:
                            url = databases.create(synchronous_commit=backend == "postgresql")
                        result = measure(url, writers, batch, seconds)
                        runs.append({"backend": backend, "batch": batch, "repeat": repeat + 1, **result})
                        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        settings = databases.settings()
    finally:
        databases.close()
    summary = []
    for batch in batches:
        median = {
            backend: statistics.median(r["rows_per_s"] for r in runs if r["backend"] == backend and r["batch"] == batch)
            for backend in BACKENDS
        }
        summary.append(
            {
                "rows_per_commit": batch,
                "sqlite_rows_per_s": median["sqlite"],
                "postgres_rows_per_s": median["postgresql"],
                "postgres_over_sqlite": round(median["postgresql"] / median["sqlite"], 2),
                "postgres_async_commit_rows_per_s": median["postgresql_async_commit"],
                "postgres_async_commit_over_sqlite": round(median["postgresql_async_commit"] / median["sqlite"], 2),
            }
        )
    return {
        "writers": writers,
        "seconds_per_run": seconds,
        "repeats": repeats,
        "summary": summary,
        "runs": runs,
        "postgres": settings,
        "sqlite": "WAL, synchronous=NORMAL, busy_timeout 60 s, BEGIN IMMEDIATE (fakenews_ml.monitoring.prediction_log)",
        "machine": machine(),
        "load_average_after": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batches", default="1,50", help="rows per transaction, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a PostgreSQL URL whose user may create databases")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    result = log_writes(args.postgres, args.writers, args.seconds, batches, args.repeats)
    print(markdown_table(result["summary"]))
    print(
        f"\n{args.writers} writer processes, {args.seconds:g} s per run, median of {args.repeats}; {result['machine']}"
    )
    print(f"PostgreSQL {result['postgres']}; SQLite: {result['sqlite']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
