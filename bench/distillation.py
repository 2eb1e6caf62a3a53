"""A distilled student against its teacher on FakeNewsNet, through the very stages the graph runs
(``quantize_or_reuse`` for the teacher, ``distill_or_reuse`` for the student: training, int8, comparison).

    FAKENEWS_HOME=... python bench/distillation.py --teacher models/<key> [--max-steps 200] [--out FILE]

``--teacher`` is a bundle location in the store (``fakenews train`` prints it); without it the teacher is trained
with ``--teacher-config`` (a PipelineConfig JSON) first. The student's training settings are the teacher's
(from its bundle.json) unless overridden here. Prints the served variants' quality on the frozen test split
and their throughput, timed alternately in this one process (on a shared machine only the ratio is fair).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAKENEWSNET, machine, markdown_table  # noqa: E402

from fakenews_ml.config import DataConfig, DistillConfig, PipelineConfig, QuantizeConfig, TrainConfig  # noqa: E402
from fakenews_ml.stages.distillation import distill_or_reuse  # noqa: E402
from fakenews_ml.stages.lifecycle import prepare_training_data, train_from_sources  # noqa: E402
from fakenews_ml.stages.quantization import quantize_or_reuse  # noqa: E402
from fakenews_ml.stages.training import bundle_manifest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", help="the teacher's location in the store (models/<key>)")
    parser.add_argument("--teacher-config", type=Path, help="PipelineConfig JSON to train the teacher with")
    parser.add_argument("--max-steps", type=int, help="the student's step cap (default: the teacher's)")
    parser.add_argument("--epochs", type=int, help="the student's epochs (default: the teacher's)")
    parser.add_argument("--student-layers", type=int)
    parser.add_argument("--lexical", choices=["auto", "own", "none"], default="auto")
    parser.add_argument("--speed-rows", type=int, default=2000)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    config = PipelineConfig(data=DataConfig(sources=[str(FAKENEWSNET)]))
    if args.teacher_config:
        config = PipelineConfig.model_validate_json(args.teacher_config.read_text())
    splits, tokenized = prepare_training_data(config, progress=False)
    teacher = bundle_manifest(args.teacher) if args.teacher else train_from_sources(config)
    teacher_quantized = quantize_or_reuse(teacher, splits, QuantizeConfig())
    student_train = TrainConfig(
        **{
            **{k: v for k, v in teacher.hyperparameters.items() if k in TrainConfig.model_fields},
            "progress_bar": False,
            **({"max_steps": args.max_steps} if args.max_steps else {}),
            **({"epochs": args.epochs} if args.epochs else {}),
        }
    )
    distill = DistillConfig(
        student_layers=args.student_layers,
        lexical=args.lexical,
        speed_rows=args.speed_rows,
        speed_rounds=args.speed_rounds,
    )
    distilled = distill_or_reuse(teacher, teacher_quantized, tokenized, splits, student_train, distill)
    c = distilled.comparison
    rows = [
        {"model": f"teacher ({distilled.teacher.layers} layers)", "variant": "fp32", "macro_f1": c.teacher.macro_f1,
         "roc_auc": c.teacher.roc_auc, "headlines/s": "-"},
        {"model": f"teacher ({distilled.teacher.layers} layers)", "variant": c.teacher_speed.variant,
         "macro_f1": c.teacher_served.macro_f1, "roc_auc": c.teacher_served.roc_auc,
         "headlines/s": c.teacher_speed.rows_per_second},
        {"model": f"student ({distilled.layers} layers, lexical {distilled.lexical})", "variant": "fp32",
         "macro_f1": c.student_fp32.macro_f1, "roc_auc": c.student_fp32.roc_auc, "headlines/s": "-"},
        {"model": f"student ({distilled.layers} layers, lexical {distilled.lexical})", "variant": c.student_speed.variant,
         "macro_f1": c.student.macro_f1, "roc_auc": c.student.roc_auc, "headlines/s": c.student_speed.rows_per_second},
    ]  # fmt: skip
    for row in rows:
        row["macro_f1"] = round(row["macro_f1"], 4)
        row["roc_auc"] = round(row["roc_auc"], 4) if row["roc_auc"] is not None else None
    print(f"{c.test_rows} test headlines; {machine()}\n")
    print(markdown_table(rows))
    print(f"\n{c.reason}\nwithin bounds: {c.within_bounds}, faster: {c.faster}")
    print(f"teacher {distilled.teacher.bundle}, student {distilled.student.bundle}")
    print(f"lexical choice: {distilled.lexical_choice}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {"machine": machine(), "rows": rows, "manifest": json.loads(distilled.model_dump_json())}, indent=2
            )
        )


if __name__ == "__main__":
    main()
