"""Monitoring: what the model sees in production and whether it still looks like the training data.

Traffic comes from the prediction log (API, dashboard and simulator alike); drift from the daily drift
reports the Dagster ``drift_report`` asset writes under FAKENEWS_HOME/drift_reports.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import components, data


def bucket_for(span: pd.Timedelta) -> tuple[str, str]:
    """A time bucket that gives a readable number of bars for the span of the data."""
    for limit, freq, label in (
        (pd.Timedelta(hours=2), "1min", "minute"),
        (pd.Timedelta(hours=12), "10min", "10 minutes"),
        (pd.Timedelta(days=3), "1h", "hour"),
    ):
        if span <= limit:
            return freq, label
    return "1D", "day"


def traffic_section(threshold: float | None) -> None:
    range_name = (
        st.segmented_control("Time range", list(data.RANGES), default="Last 24 hours", key="range") or "Last 24 hours"
    )
    frame, truncated = data.traffic(range_name, data.log_key())
    feedback = data.feedback_stats(data.log_key())
    a, b, c, d = st.columns(4)
    a.metric("Predictions", f"{len(frame):,}")
    b.metric("Predicted fake", f"{frame['label'].mean():.0%}" if len(frame) else "—")
    c.metric("Feedback labels (all time)", f"{feedback['count']:,}")
    d.metric("Model versions seen", f"{frame['model_version'].nunique()}" if len(frame) else "—")
    if truncated:
        st.caption(f"Showing the newest {data.MAX_TRAFFIC_ROWS:,} predictions of the range.")
    if frame.empty:
        st.info(
            "No predictions in this time range yet. Classify headlines on the Predict page, call the API "
            "(`fakenews serve`), or stream a file with `fakenews simulate`.",
            icon=":material/info:",
        )
        return

    span = frame["created_at"].max() - frame["created_at"].min()
    freq, unit = bucket_for(span)
    binned = frame.assign(bucket=frame["created_at"].dt.floor(freq).dt.tz_localize(None))
    volume = binned.groupby(["bucket", "origin"]).size().rename("predictions").reset_index()
    rate = (
        binned.groupby(["bucket", "model_version"])
        .agg(fake_rate=("label", "mean"), predictions=("label", "size"))
        .reset_index()
    )

    left, right = st.columns(2)
    with left:
        st.markdown(f"**Prediction volume** (per {unit}, by origin)")
        chart = (
            alt.Chart(volume)
            .mark_bar()
            .encode(
                x=alt.X("bucket:T", title=None),
                y=alt.Y("predictions:Q", title="predictions"),
                color=alt.Color("origin:N", legend=alt.Legend(orient="bottom", title=None)),
                tooltip=[alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"), "origin:N", "predictions:Q"],
            )
            .properties(height=260)
        )
        st.altair_chart(chart, width="stretch")
    with right:
        st.markdown(f"**Share predicted fake** (per {unit}, by model version)")
        chart = (
            alt.Chart(rate)
            .mark_line(point=True)
            .encode(
                x=alt.X("bucket:T", title=None),
                y=alt.Y("fake_rate:Q", title="share fake", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("model_version:N", legend=alt.Legend(orient="bottom", title=None)),
                tooltip=[
                    alt.Tooltip("bucket:T", title="from", format="%Y-%m-%d %H:%M"),
                    "model_version:N",
                    alt.Tooltip("fake_rate:Q", format=".1%"),
                    "predictions:Q",
                ],
            )
            .properties(height=260)
        )
        st.altair_chart(chart, width="stretch")

    st.markdown(
        "**Confidence**: how sure the model is (distribution of P(fake); the dashed line is the decision threshold)"
    )
    hist = frame.assign(verdict=frame["label"].map({0: "real", 1: "fake"}))
    chart = (
        alt.Chart(hist)
        .mark_bar()
        .encode(
            x=alt.X("prob_fake:Q", bin=alt.Bin(extent=[0, 1], step=0.05), title="P(fake)", axis=alt.Axis(format="%")),
            y=alt.Y("count():Q", title="predictions"),
            color=alt.Color("verdict:N", scale=components.LABEL_COLORS, legend=alt.Legend(orient="bottom", title=None)),
            tooltip=[alt.Tooltip("count():Q", title="predictions"), "verdict:N"],
        )
    )
    if threshold is not None:
        chart = chart + alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(strokeDash=[5, 4], color="black").encode(
            x="t:Q"
        )
    st.altair_chart(chart.properties(height=220), width="stretch")


def drift_section(champion_version: str | None) -> None:
    st.subheader("Drift")
    history = data.drift_table(data.home_key())
    if history.empty:
        st.info(
            "No drift report yet. The Dagster `drift_report` asset writes one per day of logged traffic "
            "(materialize it, or let the daily schedule and the volume sensor do it).",
            icon=":material/info:",
        )
        return
    latest = history.iloc[-1]
    summary = data.drift_summary(data.home_key(), latest["partition"]) or {}
    reasons = "; ".join(summary.get("reasons") or [])
    compared_with = latest["model_version"]
    if bool(latest["drifted"]) and champion_version and compared_with and compared_with != champion_version:
        # the usual end of a drift episode: the retrain it triggered was promoted after this report
        st.warning(
            f"**Drift check failed** for {latest['partition']} against the reference of model {compared_with}: "
            f"{components.md_escape(reasons or 'drift above threshold')}. Model {champion_version} serves since then; "
            "the next report compares traffic with its reference.",
            icon=":material/published_with_changes:",
        )
    elif bool(latest["drifted"]):
        st.error(
            f"**Drift check failed** for {latest['partition']}: {components.md_escape(reasons or 'drift above threshold')}. "
            "The drift sensor requests a retraining (after its cooldown).",
            icon=":material/crisis_alert:",
        )
    else:
        st.success(
            f"**Drift check passed** for {latest['partition']}: drift share {latest['drift_share']:.2f} "
            f"(fails at {latest['drift_share_threshold']:.2f}), embedding drift "
            f"{_fmt(latest['embedding_drift'])} (fails above {_fmt(latest['embedding_threshold'])}).",
            icon=":material/check_circle:",
        )

    plot = history.assign(status=history["drifted"].map({True: "drift", False: "ok"}))
    status_scale = alt.Scale(domain=["ok", "drift"], range=[components.REAL_COLOR, components.FAKE_COLOR])
    left, right = st.columns(2)
    with left:
        st.markdown("**Drift share** (share of drifted features; dashed: the check's threshold)")
        st.altair_chart(
            _score_chart(plot, "drift_share", "drift_share_threshold", "drift share", status_scale), width="stretch"
        )
    with right:
        st.markdown("**Embedding drift** (domain classifier ROC AUC; 0.5 = same as training)")
        st.altair_chart(
            _score_chart(
                plot.dropna(subset=["embedding_drift"]),
                "embedding_drift",
                "embedding_threshold",
                "ROC AUC",
                status_scale,
            ),
            width="stretch",
        )

    partitions = list(history["partition"])[::-1]
    # ?report=<day> (the link on the drift_report asset in Dagster) opens that day's report
    asked = st.query_params.get("report")
    chosen = st.selectbox(
        "Report of", partitions, index=partitions.index(asked) if asked in partitions else 0, key="drift_partition"
    )
    summary = data.drift_summary(data.home_key(), chosen) or {}
    features = summary.get("features") or {}
    if features:
        rows = pd.DataFrame(
            [
                {
                    "feature": name,
                    "ratio": (f["score"] or 0) / f["threshold"] if f.get("threshold") else None,
                    "score": f.get("score"),
                    "threshold": f.get("threshold"),
                    "test": f.get("stattest"),
                    "status": "drift" if f.get("drifted") else "ok",
                }
                for name, f in features.items()
            ]
        )
        st.markdown(f"**Drift per feature** on {chosen} (score ÷ threshold: past 1 = drifted)")
        bars = (
            alt.Chart(rows)
            .mark_bar()
            .encode(
                y=alt.Y("feature:N", sort="-x", title=None),
                x=alt.X("ratio:Q", title="score ÷ threshold"),
                color=alt.Color("status:N", scale=status_scale, legend=None),
                tooltip=[
                    "feature:N",
                    "test:N",
                    alt.Tooltip("score:Q", format=".3f"),
                    alt.Tooltip("threshold:Q", format=".3f"),
                    "status:N",
                ],
            )
        )
        one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[5, 4], color="black").encode(x="x:Q")
        st.altair_chart((bars + one).properties(height=36 * len(rows) + 40), width="stretch")
    st.caption(
        f"{summary.get('n_current', '?')} logged predictions compared with {summary.get('n_reference', '?')} reference "
        f"rows · model {summary.get('model_version') or '?'}"
    )
    report = data.drift_report_html(chosen)
    if report is None:
        st.warning(f"The HTML report of {chosen} is missing.")
        return
    with st.expander("Evidently drift report", expanded=True):
        components.sandboxed_html(report, height=900)
    st.download_button(
        "Download the HTML report", report.encode("utf-8"), file_name=f"drift_report_{chosen}.html", mime="text/html"
    )


def _fmt(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.3f}"


def _score_chart(frame: pd.DataFrame, value: str, threshold: str, title: str, status_scale) -> alt.Chart:
    base = alt.Chart(frame).encode(x=alt.X("partition:O", title=None, sort="ascending", axis=alt.Axis(labelAngle=-30)))
    line = base.mark_line(color="#4c78a8").encode(y=alt.Y(f"{value}:Q", title=title))
    points = base.mark_point(filled=True, size=80).encode(
        y=f"{value}:Q",
        color=alt.Color("status:N", scale=status_scale, legend=alt.Legend(orient="bottom", title=None)),
        tooltip=[
            "partition:N",
            alt.Tooltip(f"{value}:Q", format=".3f"),
            alt.Tooltip(f"{threshold}:Q", title="threshold", format=".3f"),
            "n_current:Q",
            "status:N",
        ],
    )
    limit = base.mark_line(strokeDash=[6, 4], color="black").encode(y=f"{threshold}:Q")
    return (line + limit + points).properties(height=240)


def main() -> None:
    st.title("Monitoring")
    try:
        champion = data.champion_summary()
    except Exception:  # noqa: BLE001 - the page is about the log; Predict reports a broken champion
        champion = None
    traffic_section(champion["threshold"] if champion else None)
    drift_section(champion["version"] if champion else None)


components.guard(main)
