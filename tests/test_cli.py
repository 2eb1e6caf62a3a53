"""The real ``fakenews`` CLI: help everywhere, train -> evaluate -> quantize -> predict, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fakenews_ml.bundle import load_bundle, read_meta
from fakenews_ml.cli import main

COMMANDS = ["train", "evaluate", "quantize", "predict"]
FAKENEWS = Path(sys.executable).with_name("fakenews")


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(
        FAKENEWS_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        WANDB_MODE="offline",
        NO_GCE_CHECK="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def _run(args: list[str], home: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=_env(home), timeout=timeout, cwd=home)


def _stdout_json(text: str) -> dict:
    """The JSON document a command printed (the last top-level ``{...}`` block of stdout)."""
    start = text.rindex("\n{") + 1 if "\n{" in text else text.index("{")
    return json.loads(text[start:])


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory, news_frame_factory) -> Path:
    frame = news_frame_factory(240, seed=11)
    path = tmp_path_factory.mktemp("cli_data") / "news.csv"
    frame[["title", "text", "label"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cli_bundle(tmp_path_factory, train_csv, tiny_encoder_dir):
    """``fakenews train`` on a small CSV with the tiny encoder: the bundle the other CLI tests use."""
    root = tmp_path_factory.mktemp("cli_train")
    out = root / "bundle"
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test FAKENEWS_HOME is not set yet
        mp.setenv("FAKENEWS_HOME", str(root / "home"))
        code = main(
            [
                "train",
                "--sources",
                str(train_csv),
                "--out",
                str(out),
                "--encoder",
                str(tiny_encoder_dir),
                "--max-steps",
                "5",
                "--batch-size",
                "8",
                "--max-length",
                "32",
                "--no-progress",
                "--precision",
                "32-true",
                "--accelerator",
                "cpu",
            ]
        )
    assert code == 0
    return out


@pytest.fixture
def predict_csv(tmp_path, news_frame_factory) -> Path:
    frame = news_frame_factory(23, seed=12)
    frame = frame.assign(note=[f"row {i}" for i in range(len(frame))], score=np.arange(len(frame)) * 1.5)
    frame = frame.sample(frac=1.0, random_state=0)  # ids out of order: the output must keep this order
    path = tmp_path / "in.csv"
    frame[["id", "note", "title", "score"]].to_csv(path, index=False)
    return path


# --- help ---------------------------------------------------------------------------------------------------


def test_module_help_runs_as_a_subprocess(tmp_path):
    result = _run([sys.executable, "-m", "fakenews_ml.cli", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, tmp_path):
    assert FAKENEWS.exists(), "the `fakenews` console script is not installed in this environment"
    result = _run([str(FAKENEWS), command, "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: fakenews {command}")
    assert "--model" in result.stdout or command == "train"


def test_help_in_process(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "--help"])
    assert info.value.code == 0
    assert "--variant" in capsys.readouterr().out


# --- the happy path -----------------------------------------------------------------------------------------


def test_train_writes_a_complete_bundle(cli_bundle, train_csv, tiny_encoder_dir):
    meta = read_meta(cli_bundle)
    assert meta["variant"] == "fp32"
    assert meta["train_config"]["max_steps"] == 5 and meta["train_config"]["precision"] == "32-true"
    assert meta["model_config"]["encoder"] == str(tiny_encoder_dir)
    assert meta["model_config"]["max_length"] == 32
    lineage = json.loads((cli_bundle / "lineage.json").read_text())
    from fakenews_ml.data.sources import sha256_file

    assert lineage["sources"] == [{"uri": str(train_csv), "sha256": sha256_file(train_csv)}]
    assert sum(s["rows"] for s in lineage["splits"].values()) == 240
    assert (cli_bundle / "heldout_test.csv").exists()


def test_train_prints_a_json_summary(train_csv, tiny_encoder_dir, tmp_path, fakenews_home, capsys):
    code = main(
        [
            "train",
            "--sources",
            str(train_csv),
            "--encoder",
            str(tiny_encoder_dir),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--max-length",
            "16",
            "--max-rows",
            "120",
            "--no-progress",
            "--precision",
            "32-true",
            "--accelerator",
            "cpu",
        ]
    )
    assert code == 0
    summary = _stdout_json(capsys.readouterr().out)
    # no --out: the bundle is the one in the artifact store, where the next unchanged run finds it
    assert summary["store_location"].startswith("models/") and not summary["reused"]
    assert Path(summary["bundle"]) == fakenews_home / summary["store_location"]
    assert read_meta(summary["bundle"])["train_config"]["max_steps"] == 2
    assert 0 <= summary["threshold"] <= 1 and summary["precision"] == "32-true"
    assert set(summary["test"]) == {"accuracy", "macro_f1", "roc_auc", "pr_auc", "ece"}
    assert len(json.loads((Path(summary["bundle"]) / "lineage.json").read_text())["sources"]) == 1


def test_evaluate(cli_bundle, tmp_path, capsys, news_frame_factory):
    labelled = tmp_path / "labelled.csv"
    news_frame_factory(40, seed=13)[["title", "label"]].to_csv(labelled, index=False)
    assert (
        main(["evaluate", "--model", str(cli_bundle), "--input", str(labelled), "--plots", str(tmp_path / "plots")])
        == 0
    )
    metrics = _stdout_json(capsys.readouterr().out)
    assert metrics["n"] == 40 and metrics["variant"] == "fp32"
    assert metrics["model_version"] == read_meta(cli_bundle)["version"]
    for key in ("accuracy", "macro_f1", "roc_auc", "pr_auc", "ece"):
        assert 0 <= metrics[key] <= 1
    assert np.asarray(metrics["confusion_matrix"]).sum() == 40
    assert all(Path(p).is_file() for p in metrics["plots"].values())


def test_quantize_then_predict_csv_and_headline(cli_bundle, predict_csv, tmp_path, capsys):
    assert main(["quantize", "--model", str(cli_bundle)]) == 0
    report = _stdout_json(capsys.readouterr().out)
    assert report == json.loads((cli_bundle / "quantization.json").read_text())
    assert report["eval_rows"] == len(pd.read_csv(cli_bundle / "heldout_test.csv"))
    for variant in ("int8", "bf16"):
        assert load_bundle(cli_bundle / "variants" / variant).variant == variant
    assert report["recommended"] in ("fp32", "int8", "bf16")
    assert report["int8_smoothing"]["alpha"] == 0.8  # the default, calibrated on the bundle's train titles

    out = tmp_path / "out" / "predictions.csv"
    assert main(["predict", "--model", str(cli_bundle), "--input", str(predict_csv), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote 23 predictions to {out}" in captured.err
    source = pd.read_csv(predict_csv, dtype=str, keep_default_na=False)
    result = pd.read_csv(out, dtype={"id": str, "note": str, "title": str})
    assert list(result.columns) == ["id", "note", "title", "score", "prob_fake", "label", "ood_score", "out_of_domain"]
    assert result["id"].tolist() == source["id"].tolist()  # every row, in the input's order
    assert result["title"].tolist() == source["title"].tolist()
    assert result["note"].tolist() == source["note"].tolist()
    assert result["score"].tolist() == [float(s) for s in source["score"]]
    assert result["prob_fake"].between(0, 1).all()
    assert set(result["label"]) <= {0, 1}
    served = load_bundle(
        cli_bundle if report["recommended"] == "fp32" else cli_bundle / "variants" / report["recommended"]
    )
    assert result["label"].tolist() == (result["prob_fake"] >= served.threshold - 1e-6).astype(int).tolist()

    assert (
        main(
            ["predict", "--model", str(cli_bundle), "--variant", "fp32", "Shocking secret they don't want you to know"]
        )
        == 0
    )
    single = _stdout_json(capsys.readouterr().out)
    assert single["title"] == "Shocking secret they don't want you to know"
    assert 0 <= single["prob_fake"] <= 1 and single["label"] in (0, 1)
    assert single["verdict"] == ("fake" if single["label"] else "real")
    assert single["model_version"] == read_meta(cli_bundle)["version"]


def test_quantize_smoothing_alpha_flag(cli_bundle, tmp_path, capsys):
    import shutil

    bundle = shutil.copytree(cli_bundle, tmp_path / "bundle")
    assert main(["quantize", "--model", str(bundle), "--variants", "int8", "--smoothing-alpha", "none"]) == 0
    assert _stdout_json(capsys.readouterr().out)["int8_smoothing"] is None
    with pytest.raises(SystemExit) as info:
        main(["quantize", "--model", str(bundle), "--smoothing-alpha", "1.5"])
    assert info.value.code == 2
    assert "expected a number from 0 to 1 or 'none', got '1.5'" in capsys.readouterr().err


def test_predict_keeps_an_existing_label_column(cli_bundle, tmp_path):
    src = tmp_path / "labelled.csv"
    pd.DataFrame({"title": ["Council meets", "Shocking secret!!!"], "label": ["real", "fake"]}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert (
        main(["predict", "--model", str(cli_bundle), "--variant", "fp32", "--input", str(src), "--output", str(out)])
        == 0
    )
    result = pd.read_csv(out)
    assert list(result.columns) == ["title", "label_input", "prob_fake", "label", "ood_score", "out_of_domain"]
    assert result["label_input"].tolist() == ["real", "fake"]


def test_predict_csv_larger_than_one_call(cli_bundle, tmp_path, monkeypatch, news_frame_factory):
    """A file is not an API call: more rows than ``max_batch`` are predicted in consecutive calls."""
    from fakenews_ml import config
    from fakenews_ml.predict import Predictor

    class SmallCalls(config.PredictConfig):
        max_batch: int = 7

    calls = []
    real_predict = Predictor.predict
    monkeypatch.setattr(config, "PredictConfig", SmallCalls)
    monkeypatch.setattr(
        Predictor,
        "predict",
        lambda self, titles, progress=None: calls.append(len(titles)) or real_predict(self, titles, progress),
    )
    frame = news_frame_factory(30, seed=14)[["title"]]
    src, out = tmp_path / "many.csv", tmp_path / "many_out.csv"
    frame.to_csv(src, index=False)
    assert (
        main(["predict", "--model", str(cli_bundle), "--variant", "fp32", "--input", str(src), "--output", str(out)])
        == 0
    )
    monkeypatch.undo()
    assert calls == [7, 7, 7, 7, 2]
    result = pd.read_csv(out)
    assert result["title"].tolist() == frame["title"].tolist()
    expected = Predictor.from_path(cli_bundle, "fp32").predict_proba(frame["title"].tolist())
    np.testing.assert_allclose(result["prob_fake"], expected, atol=1e-5)


def test_predict_headline_as_a_real_subprocess(cli_bundle, tmp_path):
    result = _run(
        [str(FAKENEWS), "predict", "--model", str(cli_bundle), "--variant", "fp32", "Council meets on budget"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["title"] == "Council meets on budget" and 0 <= data["prob_fake"] <= 1


# --- bad input: exit code 2, one line on stderr naming the problem, nothing written --------------------------


def _bad_csv(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.csv"
    if kind == "no_title":
        path.write_text("headline,label\nSomething happened,0\n")
    elif kind == "latin1":
        path.write_bytes("title\nCaf\u00e9 owner says \u00abnon\u00bb\n".encode("latin-1"))
    elif kind == "empty_title":
        path.write_text('title,note\nFirst headline,a\n"  ",b\nThird headline,c\n')
    elif kind == "empty_file":
        path.write_text("")
    return path


BAD_PREDICT_CASES = {
    "missing model dir": (
        lambda tmp, csv, bundle: [
            "--model",
            str(tmp / "no-such-model"),
            "--input",
            str(csv),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["no-such-model", "no such model bundle"],
    ),
    "csv without title": (
        lambda tmp, csv, bundle: [
            "--model",
            str(bundle),
            "--input",
            str(_bad_csv(tmp, "no_title")),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["no 'title' column", "headline"],
    ),
    "non-utf8 csv": (
        lambda tmp, csv, bundle: [
            "--model",
            str(bundle),
            "--input",
            str(_bad_csv(tmp, "latin1")),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["not valid UTF-8", "latin1.csv"],
    ),
    "empty title": (
        lambda tmp, csv, bundle: [
            "--model",
            str(bundle),
            "--input",
            str(_bad_csv(tmp, "empty_title")),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["empty title", "line(s) 3"],
    ),
    "empty file": (
        lambda tmp, csv, bundle: [
            "--model",
            str(bundle),
            "--input",
            str(_bad_csv(tmp, "empty_file")),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["empty"],
    ),
    "missing input file": (
        lambda tmp, csv, bundle: [
            "--model",
            str(bundle),
            "--input",
            str(tmp / "nope.csv"),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["not found", "nope.csv"],
    ),
    "headline and input": (
        lambda tmp, csv, bundle: [
            "--model",
            str(bundle),
            "A headline",
            "--input",
            str(csv),
            "--output",
            str(tmp / "o.csv"),
        ],
        ["either one headline or --input"],
    ),
    "input without output": (
        lambda tmp, csv, bundle: ["--model", str(bundle), "--input", str(csv)],
        ["--input needs --output"],
    ),
    "neither headline nor input": (
        lambda tmp, csv, bundle: ["--model", str(bundle)],
        ["either one headline or --input"],
    ),
    "blank headline": (
        lambda tmp, csv, bundle: ["--model", str(bundle), "--variant", "fp32", "   "],
        ["headline 0 is empty"],
    ),
    "variant not built": (
        lambda tmp, csv, bundle: ["--model", str(bundle), "--variant", "int8", "A headline"],
        ["no 'int8' variant", "fakenews quantize"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_PREDICT_CASES))
def test_predict_bad_input(case, cli_bundle, predict_csv, tmp_path, capsys):
    # a private fp32-only copy: the quantize test may have added variants to the shared bundle
    import shutil

    bundle = Path(
        shutil.copytree(cli_bundle, tmp_path / "bundle", ignore=shutil.ignore_patterns("variants", "quantization.json"))
    )
    make_argv, expected = BAD_PREDICT_CASES[case]
    argv = make_argv(tmp_path, predict_csv, bundle)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["predict", *argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fakenews predict: error: ")
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert captured.out == ""
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == before  # no output file, no partial file
    assert not (tmp_path / "o.csv").exists()


def test_failed_predict_leaves_an_existing_output_untouched(cli_bundle, tmp_path, capsys):
    out = tmp_path / "o.csv"
    out.write_text("precious\n")
    code = main(
        ["predict", "--model", str(cli_bundle), "--input", str(_bad_csv(tmp_path, "empty_title")), "--output", str(out)]
    )
    assert code == 2
    assert out.read_text() == "precious\n"


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["evaluate", "--model", "{missing}", "--input", "{csv}"], "no such model bundle"),
        (["evaluate", "--model", "{bundle}", "--input", "{nolabel}"], "missing column(s) ['label']"),
        (["quantize", "--model", "{missing}"], "no such model bundle"),
        (["train", "--sources", "{missing}.csv", "--out", "{out}", "--no-progress"], "not found"),
        (["train", "--sources", "{nolabel}", "--out", "{out}", "--no-progress"], "missing column(s) ['label']"),
        (["train", "--sources", "{csv}", "--out", "{afile}/sub", "--no-progress"], "is not an existing folder"),
        (["train", "--sources", "{csv}", "--out", "{folder}", "--no-progress"], "exists and is not a model bundle"),
        (["train", "--sources", "{csv}", "--batch-size", "0", "--no-progress"], "batch_size"),
        (["serve", "--log-url", "notaurl"], "the prediction log URL is not a SQLAlchemy URL"),
        (["serve", "--log-url", "postgresql+psycopg://nobody@127.0.0.1:9/none"], "cannot open the prediction log"),
    ],
)
def test_other_commands_bad_input(argv, expected, cli_bundle, tmp_path, capsys, news_frame_factory):
    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("title\nA headline\n")
    csv = tmp_path / "ok.csv"
    news_frame_factory(10, seed=15)[["title", "label"]].to_csv(csv, index=False)
    values = {
        "missing": str(tmp_path / "missing"),
        "bundle": str(cli_bundle),
        "csv": str(csv),
        "nolabel": str(nolabel),
        "out": str(tmp_path / "out"),
        "afile": str(tmp_path / "a_file.txt"),
        "folder": str(tmp_path / "someone_elses_folder"),
    }
    (tmp_path / "a_file.txt").write_text("not a folder")
    (tmp_path / "someone_elses_folder").mkdir()
    (tmp_path / "someone_elses_folder" / "notes.txt").write_text("keep me")
    code = main([a.format(**values) for a in argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fakenews {argv[0]}: error: ")
    assert expected in lines[0]
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "someone_elses_folder" / "notes.txt").read_text() == "keep me"  # a user's files survive


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_predict_batch_size_must_be_a_positive_whole_number(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and one error line, exit code 2
        main(["predict", "--model", str(tmp_path), "--batch-size", value, "A headline"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"fakenews predict: error: argument --batch-size: expected a whole number of at least 1, got '{value}'"
    )


def test_bad_input_as_a_real_subprocess(tmp_path):
    result = _run([str(FAKENEWS), "predict", "--model", str(tmp_path / "absent"), "Some headline"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"fakenews predict: error: {tmp_path / 'absent'}: no such model bundle directory"
    ]
    assert result.stdout == ""


# --- train configuration: a --config file, and only the flags given override it -----------------------------


def _parse_train(argv):
    from fakenews_ml.cli import _train_config, build_parser

    return _train_config(build_parser().parse_args(["train", *argv]))


def test_train_config_file_values_survive_unless_a_flag_is_given(tmp_path):
    from fakenews_ml.config import PipelineConfig

    file = tmp_path / "config.json"
    base = PipelineConfig()
    base.data.sources = ["a.csv"]
    base.data.max_rows = 500
    base.train.epochs, base.train.batch_size, base.train.progress_bar = 7, 24, False
    base.model.max_length = 40
    file.write_text(base.model_dump_json())
    config = _parse_train(["--config", str(file)])
    assert config == base  # no flag given: the file wins everywhere
    config = _parse_train(["--config", str(file), "--epochs", "2", "--sources", "b.csv,c.csv", "--seed", "9"])
    assert config.train.epochs == 2 and config.train.batch_size == 24 and config.model.max_length == 40
    assert config.data.sources == ["b.csv", "c.csv"] and config.data.max_rows == 500
    assert config.data.seed == 9 and config.train.seed == 9
    assert config.train.progress_bar is False


def test_train_flags_without_a_config_file():
    from fakenews_ml.config import PipelineConfig

    assert _parse_train([]) == PipelineConfig()
    config = _parse_train(["--max-length", "24", "--precision", "bf16-mixed", "--no-progress", "--max-rows", "50"])
    assert config.model.max_length == 24 and config.train.precision == "bf16-mixed"
    assert config.train.progress_bar is False and config.data.max_rows == 50


@pytest.mark.parametrize(
    "argv,expected",
    [
        (
            ["--batch-size", "0"],
            "invalid training configuration: batch_size: Input should be greater than or equal to 1",
        ),
        (["--config", "{tmp}/absent.json"], "config file not found"),
        (["--config", "{tmp}/broken.json"], "invalid training configuration"),
        (["--config", "{tmp}/unknown.json"], "train.wings: Extra inputs are not permitted"),
    ],
)
def test_train_config_errors_are_one_line(argv, expected, tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "unknown.json").write_text(json.dumps({"train": {"wings": 2}}))
    code = main(["train", *[a.format(tmp=tmp_path) for a in argv], "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("fakenews train: error: ")
    assert expected in err[0]
    assert not (tmp_path / "out").exists()


def test_help_creates_nothing(fakenews_home):
    from fakenews_ml.config import TrainConfig

    result = _run([str(FAKENEWS), "train", "--help"], fakenews_home)
    assert result.returncode == 0
    assert f"(default: {TrainConfig().epochs})" in " ".join(result.stdout.split())  # defaults are shown
    assert list(fakenews_home.iterdir()) == []  # --help writes nothing under FAKENEWS_HOME
