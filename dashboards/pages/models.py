"""Models: the registry of bundles, which one is champion, how good each is, and its quantized variants."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import components, data

METRICS = [
    ("macro_f1", "macro-F1"),
    ("accuracy", "accuracy"),
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC"),
    ("ece", "calibration error"),
]
PLOTS = [
    ("confusion_matrix", "Confusion matrix (test split)"),
    ("roc_curve", "ROC curve (test split)"),
    ("calibration", "Calibration (test split)"),
]


def _metric(record: dict, name: str):
    value = record["test"].get(name)
    return None if value is None else float(value)


def registry_table(records: list[dict]) -> None:
    table = pd.DataFrame(
        [
            {
                "": "★ champion" if r["champion"] else "",
                "version": r["version"],
                "created": r["created_at"],
                "trained on": ", ".join(r["sources"]) or "—",
                "test macro-F1": _metric(r, "macro_f1"),
                "test accuracy": _metric(r, "accuracy"),
                "test ROC AUC": _metric(r, "roc_auc"),
                "size": components.fmt_bytes(r["size_bytes"]),
                "variants": ", ".join(q["variant"] + (" ✓" if q["recommended"] else "") for q in r["quantization"])
                or "fp32 only",
                "folder": r["folder"],
            }
            for r in records
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
            "test macro-F1": st.column_config.NumberColumn(format="%.3f"),
            "test accuracy": st.column_config.NumberColumn(format="%.3f"),
            "test ROC AUC": st.column_config.NumberColumn(format="%.3f"),
        },
    )


def bundle_details(record: dict) -> None:
    header = f"{'★ Champion' if record['champion'] else 'Bundle'} {record['version']}"
    st.subheader(header)
    facts = [
        f"created {components.fmt_time(record['created_at'])}",
        f"encoder {record['encoder']}",
        f"max {record['max_length']} tokens",
        f"threshold {record['threshold']:.3f}",
    ]
    if record["training"].get("precision"):
        facts.append(
            f"trained in {record['training']['precision']}" + (f" on {record['device']}" if record["device"] else "")
        )
    st.caption(" · ".join(components.md_escape(f) for f in facts))
    trained_on = ", ".join(components.md_escape(s) for s in record["sources"]) or "sources not recorded"
    if record["feedback_rows"]:
        trained_on += f", plus {record['feedback_rows']:,} feedback labels"
    if record["parent"]:
        trained_on += f" · replacing champion {components.md_escape(record['parent'])}"
    st.markdown("**Trained on:** " + trained_on)
    if record["split_rows"]:
        st.caption(
            "Rows per split: "
            + ", ".join(f"{components.md_escape(k)} {v:,}" for k, v in record["split_rows"].items() if v is not None)
        )
    if record["wandb_url"]:
        st.link_button("Open the W&B run", record["wandb_url"])

    cols = st.columns(len(METRICS))
    for col, (key, label) in zip(cols, METRICS):
        value = record["test"].get(key)
        val = record["val"].get(key)
        col.metric(
            f"test {label}",
            "—" if value is None else f"{value:.3f}",
            help=None if val is None else f"validation: {val:.3f}",
        )

    if record["quantization"]:
        st.markdown("**Serving variants** (measured against fp32 on the frozen test split; ✓ = served by default)")
        q = pd.DataFrame(record["quantization"])
        q["size"] = q["size_bytes"].map(components.fmt_bytes)
        shown = q[
            [
                "variant",
                "recommended",
                "size",
                "size_ratio",
                "rows_per_second",
                "speedup_vs_fp32",
                "accuracy_delta",
                "agreement",
                "passed",
            ]
        ]
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            column_config={
                "recommended": st.column_config.CheckboxColumn("served"),
                "size_ratio": st.column_config.NumberColumn("size vs fp32", format="%.2f×"),
                "rows_per_second": st.column_config.NumberColumn("headlines/s", format="%.0f"),
                "speedup_vs_fp32": st.column_config.NumberColumn("speed vs fp32", format="%.2f×"),
                "accuracy_delta": st.column_config.NumberColumn("accuracy change", format="%+.4f"),
                "agreement": st.column_config.NumberColumn("same verdicts", format="%.3f"),
                "passed": st.column_config.CheckboxColumn("parity passed"),
            },
        )
    else:
        st.caption("No quantized variants (the quantization step has not run for this bundle).")

    plots = [(name, title, data.plot_bytes(record["folder"], name)) for name, title in PLOTS if name in record["plots"]]
    if plots:
        for col, (_, title, image) in zip(st.columns(len(plots)), plots):
            col.image(image, caption=title, width="stretch")
    else:
        st.caption("No evaluation plots in this bundle.")

    history = pd.DataFrame(record["history"])
    metric_cols = [c for c in ("val_roc_auc", "val_macro_f1", "val_loss", "train_loss_epoch") if c in history.columns]
    if len(history) > 1 and metric_cols:
        st.markdown("**Training history** (per validation)")
        long = history.melt(id_vars=["step"], value_vars=metric_cols, var_name="metric")
        st.altair_chart(
            alt.Chart(long)
            .mark_line(point=True)
            .encode(
                x="step:Q",
                y=alt.Y("value:Q", title=None),
                color="metric:N",
                tooltip=["step:Q", "metric:N", alt.Tooltip("value:Q", format=".4f")],
            )
            .properties(height=220),
            width="stretch",
        )


def main() -> None:
    st.title("Models")
    records = data.registry(data.home_key())
    if not records:
        st.info(
            "The registry is empty: no model bundle has been trained yet. Materialize the training assets in "
            "Dagster (or run `fakenews train`).",
            icon=":material/info:",
        )
        return
    if not any(r["champion"] for r in records):
        st.warning("No bundle is in production yet: none has passed the promotion gate.", icon=":material/warning:")
    registry_table(records)
    labels = {f"{'★ ' if r['champion'] else ''}{r['version']}": r for r in records}
    default = next((i for i, r in enumerate(records) if r["champion"]), 0)
    chosen = st.selectbox("Details of", list(labels), index=default, key="bundle_choice")
    bundle_details(labels[chosen])
    history = data.promotions(data.home_key())
    if not history.empty:
        st.markdown("**Promotions** (newest first)")
        st.dataframe(
            history,
            hide_index=True,
            width="stretch",
            column_config={"promoted at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
        )


components.guard(main)
