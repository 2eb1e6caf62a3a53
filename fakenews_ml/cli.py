"""``fakenews``: train, evaluate, quantize and predict from the command line.

Every command has ``--help``. Errors the project raises on purpose (bad input, missing files) are printed
as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from fakenews_ml.errors import FakeNewsError

EXIT_USAGE = 2


def _add_train(sub) -> None:
    from fakenews_ml.config import DataConfig, ModelConfig, TrainConfig

    d, m, t = DataConfig.model_fields, ModelConfig.model_fields, TrainConfig.model_fields

    def default(field) -> str:
        return f" (default: {field.default})"

    # Tuning flags default to None, so only the flags actually given override a --config file.
    p = sub.add_parser(
        "train",
        help="train a classifier and write a model bundle",
        description="Read sources, validate, dedupe and split, fine-tune the encoder, write a bundle.",
    )
    p.add_argument(
        "--sources", help="comma-separated URIs (paths, http(s)://, gs://); default: $FAKENEWS_SOURCES or WELFake"
    )
    p.add_argument(
        "--out",
        type=Path,
        help="also copy the bundle to this folder (the bundle itself lives in the artifact store, under "
        "$FAKENEWS_HOME/models/<key>, where an unchanged run finds and reuses it)",
    )
    p.add_argument("--overwrite", action="store_true", help="let --out replace an existing bundle")
    p.add_argument("--encoder", help="Hugging Face hub id or local folder (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--max-length", type=int, help="token budget per headline" + default(m["max_length"]))
    p.add_argument("--epochs", type=int, help="passes over the training split" + default(t["epochs"]))
    p.add_argument("--batch-size", type=int, help="rows per training step" + default(t["batch_size"]))
    p.add_argument("--learning-rate", type=float, help="encoder learning rate" + default(t["learning_rate"]))
    p.add_argument(
        "--precision",
        choices=["auto", "32-true", "bf16-mixed", "16-mixed"],
        help=t["precision"].description + default(t["precision"]),
    )
    p.add_argument("--accelerator", help="auto, cpu, gpu" + default(t["accelerator"]))
    p.add_argument(
        "--devices",
        type=positive_int,
        help="devices (processes) to train on at once, data-parallel" + default(t["devices"]),
    )
    p.add_argument("--num-nodes", type=positive_int, help="machines taking part" + default(t["num_nodes"]))
    p.add_argument(
        "--strategy",
        choices=["auto", "ddp_spawn", "ddp", "ddp_fork"],
        help="how the processes start" + default(t["strategy"]),
    )
    p.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs)" + default(t["max_steps"]))
    p.add_argument("--max-rows", type=int, help="stratified sample of the deduplicated data" + default(d["max_rows"]))
    p.add_argument("--seed", type=int, help="seed for splits, sampling and training" + default(t["seed"]))
    p.add_argument("--config", type=Path, help="JSON file with a full PipelineConfig (flags above override it)")
    p.add_argument(
        "--wandb", action="store_true", help="log to Weights & Biases (mode from WANDB_MODE, default offline)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_train)


def _train_config(args):
    """The PipelineConfig for ``fakenews train``: the --config file (or the defaults), then the flags given."""
    from pydantic import ValidationError

    from fakenews_ml.config import PipelineConfig

    try:
        if args.config:
            if not args.config.is_file():
                raise FakeNewsError(f"config file not found: {args.config}")
            config = PipelineConfig.model_validate_json(args.config.read_text())
        else:
            config = PipelineConfig()
        if args.sources:
            config.data.sources = args.sources
        flags = [
            (config.data, {"max_rows": args.max_rows, "seed": args.seed}),
            (config.model, {"encoder": args.encoder, "max_length": args.max_length}),
            (
                config.train,
                {
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "learning_rate": args.learning_rate,
                    "precision": args.precision,
                    "accelerator": args.accelerator,
                    "devices": args.devices,
                    "num_nodes": args.num_nodes,
                    "strategy": args.strategy,
                    "max_steps": args.max_steps,
                    "seed": args.seed,
                },
            ),
        ]
        for section, values in flags:
            for name, value in values.items():
                if value is not None:
                    setattr(section, name, value)
        if args.no_progress:
            config.train.progress_bar = False
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise FakeNewsError(f"invalid training configuration: {problems}") from None
    return config


def _cmd_train(args) -> int:
    from fakenews_ml.bundle import check_export_target, export_bundle
    from fakenews_ml.environment import artifact_store, wandb_settings
    from fakenews_ml.stages.lifecycle import train_from_sources
    from fakenews_ml.tracking import TrainingRun

    config = _train_config(args)
    if args.out is not None:
        check_export_target(args.out, args.overwrite)  # before minutes of training, not after
    run = TrainingRun(wandb_settings(), config.model_dump()) if args.wandb else None
    trained = None
    try:
        trained = train_from_sources(config, make_logger=run.start if run else None)
    finally:
        if run is not None:
            run.finish(trained, artifact_store().path(trained.bundle) if trained else None)
    bundle = artifact_store().path(trained.bundle)
    out = export_bundle(bundle, args.out, overwrite=args.overwrite) if args.out is not None else None
    _print_json(
        {
            "bundle": str(out or bundle),
            "store_location": trained.bundle,
            "reused": trained.reused,
            "version": trained.version,
            "threshold": round(trained.threshold, 4),
            "test": trained.metrics.test.model_dump(include={"accuracy", "macro_f1", "roc_auc", "pr_auc", "ece"})
            if trained.metrics.test
            else {},
            "precision": trained.training.precision,
            "minutes": round((trained.seconds or 0.0) / 60, 1),
        }
    )
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics of a bundle on a labelled CSV",
        description="Accuracy, macro-F1, ROC-AUC, PR-AUC, calibration error, confusion matrix (JSON on stdout).",
    )
    p.add_argument("--model", type=Path, required=True, help="bundle directory")
    p.add_argument("--input", required=True, help="labelled CSV (any supported layout) or URI")
    p.add_argument("--variant", default="fp32", choices=["fp32", "int8", "bf16", "pruned", "pruned_int8", "auto"])
    p.add_argument("--plots", type=Path, help="also write confusion matrix / ROC / calibration PNGs here")
    p.set_defaults(run=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    from fakenews_ml.data.readers import read_sources
    from fakenews_ml.evaluation import evaluate_predictor
    from fakenews_ml.predict import Predictor

    frame, _ = read_sources([args.input], progress=False)
    metrics = evaluate_predictor(Predictor.from_path(args.model, args.variant), frame, args.plots)
    _print_json(metrics)
    return 0


def _add_quantize(sub) -> None:
    from fakenews_ml.config import QuantizeConfig

    p = sub.add_parser(
        "quantize",
        help="build int8 and bf16 (and pruned) variants with a parity report",
        description="Writes <model>/variants/{int8,bf16,...} and <model>/quantization.json.",
    )
    p.add_argument("--model", type=Path, required=True, help="fp32 bundle directory")
    p.add_argument("--input", help="labelled CSV to measure parity on (default: the bundle's frozen test split)")
    p.add_argument("--variants", default="int8,bf16", help="comma-separated: int8,bf16,pruned,pruned_int8")
    alpha = QuantizeConfig.model_fields["smoothing_alpha"].default
    p.add_argument(
        "--smoothing-alpha",
        type=_optional_fraction,
        default=alpha,
        help=f"int8: SmoothQuant strength 0..1, calibrated on the bundle's train titles; 'none' = plain int8 (default {alpha})",
    )
    p.set_defaults(run=_cmd_quantize)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse turns the error into one usage line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _optional_fraction(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 or 'none', got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 or 'none', got {text!r}")
    return value


def _cmd_quantize(args) -> int:
    from fakenews_ml.bundle import HELDOUT_TABLE, read_meta
    from fakenews_ml.config import QuantizeConfig
    from fakenews_ml.data.readers import read_news_file, read_sources
    from fakenews_ml.quantize import quantize_bundle

    read_meta(args.model)  # a clear error for a missing or incomplete bundle, before anything else
    heldout = args.model / f"{HELDOUT_TABLE}.csv"
    if args.input:
        frame, _ = read_sources([args.input], progress=False)
    elif heldout.exists():
        frame = read_news_file(heldout)
    else:
        raise FakeNewsError(f"{args.model} has no {heldout.name}; pass --input with a labelled CSV")
    config = QuantizeConfig(
        variants=[v.strip() for v in args.variants.split(",") if v.strip()], smoothing_alpha=args.smoothing_alpha
    )
    _print_json(quantize_bundle(args.model, frame, config))
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify headlines (a CSV, or one headline)",
        description="Adds prob_fake (0..1), label (1 = fake), ood_score and out_of_domain (true: outside what "
        "the model was trained on) to every row, in order.",
    )
    p.add_argument("headline", nargs="?", help="a single headline to classify")
    p.add_argument("--model", type=Path, help="bundle directory (default: the production champion)")
    p.add_argument("--input", type=Path, help="CSV with a 'title' column")
    p.add_argument("--output", type=Path, help="CSV to write (every input row, plus prob_fake and label)")
    p.add_argument(
        "--variant",
        default="auto",
        choices=["fp32", "int8", "bf16", "pruned", "pruned_int8", "auto"],
        help="auto = the quantized variant recommended by `fakenews quantize`, else fp32",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="headlines per forward pass (default: 64)")
    p.set_defaults(run=_cmd_predict)


def _cmd_predict(args) -> int:
    from fakenews_ml.config import PredictConfig
    from fakenews_ml.predict import Predictor
    from fakenews_ml.tables import read_title_csv, with_outputs, write_csv_atomically

    if bool(args.headline) == bool(args.input):
        raise FakeNewsError("give either one headline or --input CSV (with --output CSV)")
    if args.input and not args.output:
        raise FakeNewsError("--input needs --output (where to write the predictions)")
    # the input is checked before the (slow) model load: a bad CSV fails in a moment
    frame = read_title_csv(args.input) if args.input else None
    model = args.model if args.model is not None else _champion_or_exit()
    predictor = Predictor.from_path(model, args.variant, PredictConfig(batch_size=args.batch_size))
    if args.headline:
        row = predictor.predict([args.headline]).iloc[0]
        scored = "ood_score" in row.index
        _print_json(
            {
                "title": args.headline,
                "prob_fake": round(float(row.prob_fake), 4),
                "label": int(row.label),
                "verdict": "fake" if row.label else "real",
                "ood_score": round(float(row.ood_score), 4) if scored else None,
                "out_of_domain": bool(row.out_of_domain) if scored else None,
                "model_version": predictor.version,
            }
        )
        return 0
    from tqdm.auto import tqdm

    from fakenews_ml.predict import predict_all

    with tqdm(total=len(frame), unit="headline", desc="predict", file=sys.stderr) as bar:
        result = predict_all(predictor, frame["title"].tolist(), progress=bar.update)
    # input columns that share a name with an output column are kept, renamed, never overwritten
    outputs = {"prob_fake": result["prob_fake"].round(6).to_numpy(), "label": result["label"].to_numpy()}
    if "ood_score" in result.columns:
        outputs.update(ood_score=result["ood_score"].round(4).to_numpy(), out_of_domain=result["out_of_domain"])
    frame = with_outputs(frame, outputs)
    write_csv_atomically(frame, args.output)
    print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    return 0


def _champion_or_exit() -> Path:
    """The production champion's bundle folder, or a one-line error when nothing was promoted yet."""
    from fakenews_ml.registry import champion_path

    path = champion_path()
    if path is None:
        raise FakeNewsError("no production champion yet: pass --model BUNDLE, or promote one (`dagster dev`)")
    return path


def _add_dashboard(sub) -> None:
    p = sub.add_parser(
        "dashboard",
        help="start the Streamlit dashboard (predict, monitoring, models, pipeline)",
        description="Runs `streamlit run dashboards/app.py` headless. The dashboard reads FAKENEWS_HOME and the "
        "prediction log like the API, and the Dagster webserver at $DAGSTER_WEBSERVER_URL "
        "(default http://127.0.0.1:3000).",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501, help="TCP port (default: 8501)")
    p.set_defaults(run=_cmd_dashboard)


def dashboard_app_path() -> Path:
    """``dashboards/app.py``, found without importing the dashboards package (fakenews_ml never imports it)."""
    import importlib.util

    spec = importlib.util.find_spec("dashboards")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        app = Path(location) / "app.py"
        if app.is_file():
            return app
    raise FakeNewsError("the dashboards package is not installed: run `pip install -e .` in the project folder")


def dashboard_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(dashboard_app_path()),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


def _cmd_dashboard(args) -> int:
    import os

    if not 0 < args.port < 65536:
        raise FakeNewsError(f"--port {args.port} is not a TCP port (1-65535)")
    command = dashboard_command(args.host, args.port)
    print(f"dashboard on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    # Streamlit takes over this process: Ctrl-C, SIGTERM and the PID reach the server itself.
    os.execv(command[0], command)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakenews", description="Train, ship and watch a fake-news headline classifier."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from fakenews_ml.models_cli import add_models
    from fakenews_ml.serving.cli_commands import add_feedback, add_serve, add_simulate

    for add in (
        _add_train,
        _add_evaluate,
        _add_quantize,
        _add_predict,
        add_models,
        add_serve,
        add_feedback,
        add_simulate,
        _add_dashboard,
    ):
        add(sub)
    return parser


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our own logger only: Lightning and Dagster configure theirs, and a root handler would print twice.
    # Added once: main() may run many times in one process (tests, wrappers), and each extra handler
    # would print every message again.
    package_logger = logging.getLogger("fakenews_ml")
    if not any(getattr(h, "_fakenews_cli", False) for h in package_logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._fakenews_cli = True
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.run(args)
    except FakeNewsError as exc:
        if args.verbose:
            raise
        print(f"fakenews {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
