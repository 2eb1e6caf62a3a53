"""The distilled student in the graph: trained from the teacher's probabilities through the one training path
(a normal, complete bundle with fewer layers whose lineage names its teacher), compared with the teacher by a
blocking check on the frozen test split, and served by production_model only when that check passes and it is
faster; a bound forced to fail keeps the teacher serving, with both models' numbers in the metadata."""

from __future__ import annotations

import json

import dagster as dg

from fakenews_ml.artifacts import load_frame
from fakenews_ml.bundle import load_bundle, read_meta
from fakenews_ml.evaluation import evaluate_predictor
from fakenews_ml.predict import Predictor

from .conftest import STUDENT_TRAINING, clone_store, materialize, read_manifests_from, stage_manifests

UPSTREAM = ("trained_model", "quantized_model", "tokenized_news", "news_splits", "model_evaluation")
SELECTION = dg.AssetSelection.assets("distilled_model", "production_model") | dg.AssetSelection.checks_for_assets(
    "distilled_model"
)


def _promote_with(promoted_home, tmp_path, name: str, **student):
    """distilled_model, its check and production_model on a copy of the promoted home's store (its bundles and
    scores, no champion), from the first run's upstream manifests."""
    home = clone_store(promoted_home.home, tmp_path / name / "home")
    io_dir = stage_manifests(tmp_path / name / "io", {n: promoted_home.manifests[n] for n in UPSTREAM})
    config = {
        "ops": {"distilled_model": {"config": {**STUDENT_TRAINING, **student}}},
        "resources": promoted_home.config["resources"],
    }
    run = materialize(home, promoted_home.sources, config, io_dir=io_dir, selection=SELECTION)
    return home, run, read_manifests_from(io_dir)


def test_the_student_serves_only_when_its_check_passes(promoted_home, tmp_path, monkeypatch):
    teacher = promoted_home.manifests["trained_model"]
    evaluation = promoted_home.manifests["model_evaluation"]
    first = promoted_home.manifests["distilled_model"]  # made by the full run: the graph distils by itself
    assert promoted_home.run.checks["student_within_teacher_bounds"]

    # any speed-up will do: the student within its bounds is served
    home, run, manifests = _promote_with(promoted_home, tmp_path, "passes", min_speedup=1e-9)
    assert run.result.success, run.failed_steps
    distilled, production = manifests["distilled_model"], manifests["production_model"]
    assert distilled.reused and distilled.student.bundle == first.student.bundle  # the student's key: no bounds

    # a normal, complete bundle with fewer layers, whose lineage names its teacher
    student_path, teacher_path = home / distilled.student.bundle, home / teacher.bundle
    student, teacher_bundle = load_bundle(student_path), load_bundle(teacher_path)  # checksums verified
    assert student.model.encoder.config.num_hidden_layers == distilled.layers == 1
    assert teacher_bundle.model.encoder.config.num_hidden_layers == distilled.teacher.layers == 2
    assert distilled.parameters < distilled.teacher.parameters
    assert student.lineage["teacher"] == {
        "bundle": teacher.bundle,
        "version": teacher.version,
        "weights_sha256": teacher.weights_sha256,
    }
    assert student.meta["model_config"]["encoder_layers"] == 1
    for name in ("model.safetensors", "bundle.json", "metrics.json", "lineage.json", "heldout_test.csv"):
        assert (student_path / name).is_file(), name
    report = json.loads((student_path / "quantization.json").read_text())
    assert report["recommended"] == "int8" and report["int8"]["passed"]
    assert read_meta(student_path / "variants" / "int8")["variant"] == "int8"
    assert distilled.lexical in ("own", "none") and distilled.lexical_choice is not None

    # the check's numbers are the teacher's and the student's own, on the frozen test split
    check = run.check_metadata["student_within_teacher_bounds"]
    assert run.checks["student_within_teacher_bounds"]
    assert check["teacher_macro_f1"] == round(evaluation.challenger.metrics.macro_f1, 4)  # model_evaluation's score
    monkeypatch.setenv("FAKENEWS_HOME", str(home))
    test = load_frame(promoted_home.manifests["news_splits"].splits["test"])
    served = evaluate_predictor(Predictor.from_path(student_path, "int8"), test)
    assert check["student_macro_f1"] == round(served["macro_f1"], 4)
    assert check["student_variant"] == "int8" and check["test_rows"] == len(test)

    assert production.promoted and production.served == "student"
    assert production.champion == distilled.student.bundle
    assert production.serving == f"{distilled.student.bundle}/variants/int8"
    assert (home / "production" / "champion").resolve() == student_path.resolve()
    assert production.student.serve_student and production.student.teacher_bundle == teacher.bundle
    metadata = run.metadata["production_model"]
    assert metadata["served"] == "student" and metadata["student_headlines_per_s"] > 0
    assert metadata["teacher_macro_f1"] == check["teacher_macro_f1"]


def test_a_failing_bound_keeps_the_teacher_serving(promoted_home, tmp_path):
    teacher = promoted_home.manifests["trained_model"]
    # the student would have to be 100 points better than its teacher: the check fails, as a warning
    home, run, manifests = _promote_with(promoted_home, tmp_path, "fails", max_macro_f1_drop=-1.0, min_speedup=1e-9)
    assert run.checks == {"student_within_teacher_bounds": False}
    severity, description = run.check_descriptions["student_within_teacher_bounds"]
    assert severity == "WARN" and "points below" in description
    assert run.result.success and run.materialized == {"distilled_model", "production_model"}
    production = manifests["production_model"]
    assert production.promoted and production.served == "teacher"
    assert production.champion == teacher.bundle
    assert (home / "production" / "champion").resolve() == (home / teacher.bundle).resolve()
    assert not production.student.serve_student and "outside its bounds" in production.student.reason
    metadata = run.metadata["production_model"]
    assert metadata["served"] == "teacher"
    assert {"teacher_macro_f1", "student_macro_f1", "teacher_headlines_per_s", "student_headlines_per_s"} <= set(
        metadata
    )
