"""Predict: one headline, or a CSV of them, classified by the production model; feedback on each verdict.

Every prediction is written to the prediction log (origin 'dashboard'), the same log the API writes, so it
shows up in Monitoring and in the drift reports; feedback labels are linked to the logged prediction and
merged into the training data of the next retrain.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import components, data
from dashboards.inputs import InputProblem, Limits, check_headline, read_upload

LIMITS = Limits()


def load_model() -> data.ServedModel | None:
    try:
        model = data.served_model()
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one message
        components.log.exception("could not load the production model")
        components.show_error(f"The production model could not be loaded: {components.safe_message(exc)}")
        return None
    if model is None:
        st.info(
            "**No production model yet.** Nothing has been promoted to production, so there is nothing to "
            "classify with. Materialize `production_model` in the Dagster UI (or launch the retrain job from "
            "the Pipeline page); this page picks the champion up as soon as it is promoted.",
            icon=":material/info:",
        )
    return model


# ----- one headline -------------------------------------------------------------------------------------


def single_headline(model: data.ServedModel) -> None:
    with st.form("single_form", border=False):
        text = st.text_area(
            "Headline",
            key="headline_text",
            height=90,
            placeholder="e.g. Senate passes the budget after a late-night vote",
            help=f"One headline, at most {LIMITS.max_title_chars:,} characters.",
        )
        submitted = st.form_submit_button("Classify", type="primary")
    if submitted:
        try:
            title = check_headline(text, LIMITS)
        except InputProblem as problem:
            st.session_state.pop("single_result", None)
            components.show_error(str(problem))
        else:
            frame, log_error = data.classify(model, [title])
            row = frame.iloc[0]
            st.session_state["single_result"] = {
                "title": title,
                "prob_fake": float(row.prob_fake),
                "label": int(row.label),
                "version": model.version,
                "variant": model.variant,
                "threshold": model.threshold,
                "prediction_id": _maybe_int(row.prediction_id),
                "out_of_domain": None if pd.isna(row.out_of_domain) else bool(row.out_of_domain),
                "ood_score": None if pd.isna(row.ood_score) else float(row.ood_score),
                "ood_threshold": model.predictor.domain_threshold,
                "log_error": log_error,
                "feedback": None,
            }
    result = st.session_state.get("single_result")
    if result:
        show_single(result)


def _maybe_int(value) -> int | None:
    return None if pd.isna(value) else int(value)


def show_single(result: dict) -> None:
    fake = result["label"] == 1
    st.code(result["title"], language=None, wrap_lines=True)  # the headline, shown literally
    verdict, probability, version = st.columns([2, 1.2, 1.8])
    with verdict:
        if fake:
            st.markdown("### :red[:material/flag: Likely FAKE]")
        else:
            st.markdown("### :green[:material/verified: Likely REAL]")
        st.caption(f"Verdict: {'fake' if fake else 'real'} (decision threshold {result['threshold']:.2f})")
    probability.metric("Probability fake", f"{result['prob_fake']:.1%}")
    with version:  # as text: a version string is too long for a metric's big font
        st.caption("Model version")
        st.markdown(
            f"**{components.md_escape(result['version'])}**  \n{components.md_escape(result['variant'])} variant"
        )
    domain_notice(result)
    st.altair_chart(components.probability_meter(result["prob_fake"], result["threshold"]), width="stretch")
    if result["log_error"]:
        st.warning(
            f"This prediction could not be written to the prediction log ({components.md_escape(result['log_error'])}); "
            "feedback cannot be stored for it."
        )
        return
    feedback_buttons(result)


def domain_notice(result: dict) -> None:
    """Say so when the headline lies outside what the model was trained on: its verdict is then a guess."""
    if not result.get("out_of_domain"):
        return
    st.warning(
        "**Outside what this model was trained on.** This headline is unlike the news the model learnt from "
        f"(out-of-domain score {result['ood_score']:.1f}, threshold {result['ood_threshold']:.1f}), so the "
        "verdict above is unreliable: check it with a fact-checker.",
        icon=":material/explore_off:",
    )


def domain_summary(frame: pd.DataFrame) -> None:
    """How many of a file's headlines lie outside what the model was trained on (verdicts to doubt)."""
    if "out_of_domain" not in frame.columns or frame["out_of_domain"].isna().all():
        return
    outside = int(frame["out_of_domain"].fillna(False).astype(bool).sum())
    if outside:
        st.warning(
            f"**{outside:,} headline(s) are outside what this model was trained on** (column `out_of_domain` in "
            "the download): their verdicts are unreliable.",
            icon=":material/explore_off:",
        )


def feedback_buttons(result: dict) -> None:
    pid = result["prediction_id"]
    st.markdown("**Is the model right?** Your label is stored and used by the next retraining.")
    left, right, _ = st.columns([1, 1, 3])
    clicked = None
    if left.button("This is fake", key=f"fb_fake_{pid}", icon=":material/flag:", width="stretch"):
        clicked = 1
    if right.button("This is real", key=f"fb_real_{pid}", icon=":material/verified:", width="stretch"):
        clicked = 0
    if clicked is not None:
        try:
            data.store_feedback([(pid, clicked)])
        except Exception as exc:  # noqa: BLE001 - shown, logged, and the verdict stays
            components.log.exception("could not store feedback")
            components.show_error(f"Your label could not be stored: {components.safe_message(exc)}")
            return
        result["feedback"] = clicked
    if result["feedback"] is not None:
        st.success(
            f"Thanks! Stored your label **{components.verdict_word(result['feedback'])}** for prediction {pid}. "
            "Click the other button to correct it.",
            icon=":material/thumb_up:",
        )


# ----- a CSV file ---------------------------------------------------------------------------------------


def csv_upload(model: data.ServedModel) -> None:
    uploaded = st.file_uploader(
        "CSV file with a `title` column (UTF-8)",
        type=["csv"],
        key="csv_upload",
        help=f"At most {LIMITS.max_rows:,} rows and {LIMITS.max_upload_bytes / 1e6:.0f} MB. Other columns are kept in the download.",
    )
    if uploaded is None:
        st.caption(
            f"Upload a CSV with a `title` column: at most {LIMITS.max_rows:,} headlines and "
            f"{LIMITS.max_upload_bytes / 1e6:.0f} MB per file."
        )
        return
    try:
        frame = read_upload(uploaded.name, uploaded.getvalue(), LIMITS)
    except InputProblem as problem:
        st.session_state.pop("batch_result", None)
        components.show_error(str(problem))
        return
    batch = st.session_state.get("batch_result")
    if batch is None or batch["file_id"] != uploaded.file_id:
        st.caption(f"{len(frame):,} headline(s) ready to classify.")
        if st.button(f"Classify {len(frame):,} headline(s)", type="primary", key="classify_csv"):
            batch = classify_file(model, uploaded, frame)
    if batch is not None and batch["file_id"] == uploaded.file_id:
        show_batch(batch)


def classify_file(model: data.ServedModel, uploaded, frame: pd.DataFrame) -> dict:
    total = len(frame)
    bar = st.progress(0.0, text=f"Classifying 0 / {total:,} headlines…")
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        bar.progress(min(done / total, 1.0), text=f"Classifying {min(done, total):,} / {total:,} headlines…")

    result, log_error = data.classify(model, frame["title"].tolist(), progress)
    bar.progress(1.0, text=f"Classified {total:,} headlines.")
    # input columns named like an output column are kept, renamed, never overwritten
    outputs = [
        "prob_fake",
        "label",
        "verdict",
        "out_of_domain",
        "ood_score",
        "model_version",
        "prediction_id",
        "request_id",
    ]
    out = frame.rename(columns={c: f"{c}_input" for c in outputs if c in frame.columns}).reset_index(drop=True)
    for column in outputs:
        out[column] = result[column].to_numpy()
    batch = {"file_id": uploaded.file_id, "name": uploaded.name, "frame": out, "log_error": log_error, "stored": 0}
    st.session_state["batch_result"] = batch
    return batch


def result_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The results table: headline, verdict, P(fake) as a bar in the column of its verdict, the user's label."""
    fake = frame["label"] == 1
    view = frame[["title", "verdict"]].copy()
    view["fake_bar"] = frame["prob_fake"].where(fake)
    view["real_bar"] = frame["prob_fake"].where(~fake)
    view["your_label"] = pd.Series([None] * len(view), dtype="object")
    return view


def show_batch(batch: dict) -> None:
    frame: pd.DataFrame = batch["frame"]
    n_fake = int((frame["label"] == 1).sum())
    a, b, c = st.columns(3)
    a.metric("Headlines", f"{len(frame):,}")
    b.metric("Likely fake", f"{n_fake:,}", help="at the model's decision threshold")
    c.metric("Share fake", f"{n_fake / max(len(frame), 1):.0%}")
    domain_summary(frame)
    if batch["log_error"]:
        st.warning(
            f"These predictions could not be written to the prediction log ({components.md_escape(batch['log_error'])}); "
            "feedback cannot be stored for them."
        )
    view = result_view(frame)
    st.markdown("**Results.** To correct the model, pick *fake* or *real* in the last column, then store your labels.")
    edited = st.data_editor(
        view,
        key=f"batch_editor_{batch['file_id']}",
        hide_index=True,
        width="stretch",
        disabled=["title", "verdict", "fake_bar", "real_bar"],
        column_config={
            # medium, not large: with the bars and the label column a large headline pushed the table past the page
            "title": st.column_config.TextColumn("headline", width="medium"),
            "verdict": st.column_config.TextColumn("verdict"),
            # one bar per row, red when the verdict is fake and green when real (a bar column has one colour)
            "fake_bar": st.column_config.ProgressColumn(
                "P(fake) · fake", min_value=0.0, max_value=1.0, format="percent", color="red"
            ),
            "real_bar": st.column_config.ProgressColumn(
                "P(fake) · real", min_value=0.0, max_value=1.0, format="percent", color="green"
            ),
            "your_label": st.column_config.SelectboxColumn(
                "your label", options=["fake", "real"], help="this is fake / this is real"
            ),
        },
    )
    left, right = st.columns(2)
    chosen = edited["your_label"].dropna()
    if left.button(
        f"Store {len(chosen)} label(s)",
        key=f"store_labels_{batch['file_id']}",
        disabled=bool(batch["log_error"]) or chosen.empty,
    ):
        items = [(int(frame.at[i, "prediction_id"]), 1 if value == "fake" else 0) for i, value in chosen.items()]
        try:
            batch["stored"] = data.store_feedback(items)
        except Exception as exc:  # noqa: BLE001 - shown, logged, and the results stay
            components.log.exception("could not store feedback")
            components.show_error(f"Your labels could not be stored: {components.safe_message(exc)}")
    if batch["stored"]:
        st.success(
            f"Thanks! Stored {batch['stored']} label(s); the next retraining uses them.", icon=":material/thumb_up:"
        )
    download_name = batch["name"].rsplit(".", 1)[0] + "_predictions.csv"
    right.download_button(
        "Download results (CSV)",
        frame.to_csv(index=False).encode("utf-8"),
        file_name=download_name,
        mime="text/csv",
        key=f"download_{batch['file_id']}",
    )


def main() -> None:
    st.title("Is this headline fake?")
    model = load_model()
    if model is None:
        return
    st.caption(
        f"Production model **{model.version}** ({model.variant}) · every prediction is logged with origin "
        "`dashboard` and appears in Monitoring."
    )
    single, batch = st.tabs(["One headline", "A CSV of headlines"])
    with single:
        single_headline(model)
    with batch:
        csv_upload(model)


components.guard(main)
