"""CLI commands of the production loop: ``serve``, ``feedback import`` and ``simulate``.

Registered by ``fakenews_ml.cli``; heavy imports (FastAPI, torch, SQLAlchemy) happen inside the commands
so that ``fakenews --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from fakenews_ml.errors import FakeNewsError


def add_serve(sub) -> None:
    from fakenews_ml.config import ServeConfig

    f = ServeConfig.model_fields
    p = sub.add_parser(
        "serve",
        help="serve the production model over HTTP (FastAPI)",
        description="POST /predict, POST /predict/csv, POST /feedback, GET /health, GET /metrics. "
        "Serves the production champion (or --model) and picks up a new champion without a restart; "
        "every prediction is written to the prediction log.",
    )
    p.add_argument("--host", default=f["host"].default, help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=f["port"].default)
    p.add_argument("--model", type=Path, help="bundle directory to serve (default: the production champion link)")
    p.add_argument(
        "--variant",
        default="auto",
        choices=["auto", "fp32", "int8", "bf16", "pruned", "pruned_int8"],
        help="auto = the quantized variant the bundle recommends, else fp32",
    )
    p.add_argument(
        "--log-url",
        help="SQLAlchemy URL of the prediction log (default: $FAKENEWS_PREDICTION_LOG_URL or SQLite under FAKENEWS_HOME)",
    )
    p.add_argument("--max-batch", type=int, default=f["max_batch"].default, help="most headlines per request")
    p.add_argument(
        "--max-title-chars", type=int, default=f["max_title_chars"].default, help="longest headline accepted"
    )
    p.add_argument("--max-upload-bytes", type=int, default=f["max_upload_bytes"].default, help="largest request body")
    p.add_argument("--threads", type=int, default=f["torch_threads"].default, help="torch threads per forward pass")
    p.add_argument(
        "--workers", type=int, help="forward passes in parallel (default: usable cores / --threads, at most 8)"
    )
    p.add_argument("--no-trace", action="store_true", help="serve the eager model instead of its TorchScript trace")
    p.add_argument(
        "--allowed-hosts",
        help="comma-separated Host names the API answers to (name or name:port; * = any). Default: the --host "
        "address, localhost and 127.0.0.1 on --port. Set FAKENEWS_API_TOKEN to require a token on POST /feedback",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (costs latency)")
    p.set_defaults(run=cmd_serve)


def cmd_serve(args) -> int:
    from pydantic import ValidationError

    from fakenews_ml.config import ServeConfig
    from fakenews_ml.serving.server import run_server

    try:
        config = ServeConfig(
            host=args.host,
            port=args.port,
            max_batch=args.max_batch,
            max_title_chars=args.max_title_chars,
            max_upload_bytes=args.max_upload_bytes,
            torch_threads=args.threads,
            workers=args.workers,
            trace_model=not args.no_trace,
            allowed_hosts=args.allowed_hosts,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise FakeNewsError(f"invalid serve settings: {problems}") from None
    run_server(args.model, args.log_url, config, variant=args.variant, access_log=args.access_log)
    return 0


def add_feedback(sub) -> None:
    p = sub.add_parser(
        "feedback",
        help="labels people gave back (stored in the prediction log)",
        description="Manage feedback labels; they are merged into the training data of the next retrain.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="import a labelled CSV as feedback",
        description="CSV columns: title, label (0/1 or real/fake; 1 = fake), optional prediction_id or "
        "request_id (link to a logged prediction), optional source. The file is checked by "
        "the raw-data quality suite; if anything is wrong nothing is imported.",
    )
    imp.add_argument("csv", type=Path, help="labelled CSV file")
    imp.add_argument("--source", help="where the labels come from (default: import:<file name>)")
    imp.add_argument("--log-url", help="SQLAlchemy URL of the prediction log (default: the configured one)")
    imp.set_defaults(run=cmd_feedback_import)


def cmd_feedback_import(args) -> int:
    from fakenews_ml.monitoring.feedback import import_feedback_csv
    from fakenews_ml.monitoring.prediction_log import PredictionLog

    with PredictionLog(args.log_url) as log:
        count = import_feedback_csv(args.csv, log, source=args.source)
        print(f"imported {count} feedback label(s) from {args.csv} into {log.url}")
    return 0


def add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="stream headlines from a CSV through the API (or a model) to demo and benchmark",
        description="Samples N headlines from --input and sends them one per request; prints a JSON summary "
        "(sent, ok, errors, latency percentiles, accuracy when the CSV has labels).",
    )
    p.add_argument(
        "--input", type=Path, required=True, help="CSV with a title column (and label, for accuracy and --feedback)"
    )
    p.add_argument("--n", type=int, required=True, help="how many headlines to send")
    p.add_argument("--rate", type=float, help="requests per second in total (default: as fast as answered)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--api", help="API base URL (default: http://127.0.0.1:8000)")
    target.add_argument("--model", type=Path, help="classify in-process with this bundle instead, logging like the API")
    p.add_argument("--log-url", help="with --model: the prediction log URL (default: the configured one)")
    p.add_argument(
        "--day",
        type=date.fromisoformat,
        help="with --model: log the traffic as arriving on this UTC day (YYYY-MM-DD), to replay history",
    )
    p.add_argument("--feedback", action="store_true", help="send each headline's known label back as feedback")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--concurrency", type=int, default=1, help="parallel clients")
    p.add_argument(
        "--truncate",
        type=int,
        default=1000,
        help="cut headlines to this many characters (the API's default limit; 0 = never)",
    )
    p.add_argument("--origin", default="simulator", help="origin tag of the logged predictions")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_simulate)


def cmd_simulate(args) -> int:
    from fakenews_ml.serving.simulator import (
        DirectTarget,
        HttpTarget,
        load_headlines,
        simulate,
    )

    if (args.log_url or args.day) and not args.model:
        raise FakeNewsError("--log-url and --day only apply with --model (the API writes its own log, stamped now)")
    if args.concurrency < 1:
        raise FakeNewsError("--concurrency must be at least 1")
    headlines = load_headlines(args.input, truncate=args.truncate or None)
    if args.feedback and "label" not in headlines.columns:
        raise FakeNewsError(f"--feedback needs labels, and {args.input} has no 'label' column")
    target = (
        DirectTarget(args.model, args.log_url, args.day)
        if args.model
        else HttpTarget(args.api or "http://127.0.0.1:8000")
    )
    try:
        target.check()
        summary = simulate(
            headlines,
            args.n,
            target,
            rate=args.rate,
            concurrency=args.concurrency,
            feedback=args.feedback,
            seed=args.seed,
            origin=args.origin,
            progress=not args.no_progress,
        )
    finally:
        target.close()
    summary = {"input": str(args.input), "target": str(args.model or target.base_url), **summary}
    if args.day:
        from fakenews_ml.monitoring.partitions_start import (
            PARTITIONS_START_ENV,
            extend_partitions_start,
            partitions_start,
        )

        moved = extend_partitions_start(args.day)
        if moved:  # the replayed day needs a daily partition: the next code-location load has it
            summary["partitions_start"] = moved.isoformat()
            print(f"daily partitions now start on {moved}: reload the code location in Dagster", file=sys.stderr)
        elif args.day < partitions_start():
            print(f"{args.day} has no daily partition: {PARTITIONS_START_ENV} starts them later", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1
