"""Monitoring: what the model sees in production and whether it still looks like the training data.

Traffic comes from the prediction log (API, dashboard and simulator alike); drift from the daily drift
reports the Dagster ``drift_report`` asset writes under FAKENEWS_HOME/drift_reports.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import components, data
from dashboards.domain_chart import out_of_domain_chart

REPORT_VIEW = "monitoring"  # this page's URL path
REPORT_PARAM = "report"  # ?report=<day> shows that day's Evidently report alone


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


def time_axis(span: pd.Timedelta, field: str = "bucket") -> alt.X:
    """A time axis in 24-hour UTC time, labelled with its timezone (dates only past a few days)."""
    fmt = "%H:%M" if span <= pd.Timedelta(days=1) else "%d %b %H:%M" if span <= pd.Timedelta(days=3) else "%d %b"
    return alt.X(
        f"{field}:T",
        title="time (UTC)",
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format=fmt, formatType="utc", labelOverlap=True),
    )


def time_tooltip(field: str = "bucket") -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", title="from (UTC)", format="%Y-%m-%d %H:%M", formatType="utc")


def traffic_section(threshold: float | None, range_name: str) -> None:
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

    # buckets sized to the chosen range (not to the data: one burst must not squeeze the rest into one bar)
    span = pd.Timedelta(data.RANGES[range_name] or (frame["created_at"].max() - frame["created_at"].min()))
    freq, unit = bucket_for(span)
    binned = frame.assign(bucket=frame["created_at"].dt.floor(freq))  # timezone-aware UTC: charted as UTC
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
                x=time_axis(span),
                y=alt.Y("predictions:Q", title="predictions"),
                color=alt.Color("origin:N", legend=alt.Legend(orient="bottom", title=None)),
                tooltip=[time_tooltip(), "origin:N", "predictions:Q"],
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
                x=time_axis(span),
                y=alt.Y("fake_rate:Q", title="share fake", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("model_version:N", legend=alt.Legend(orient="bottom", title=None)),
                tooltip=[
                    time_tooltip(),
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
    out_of_domain_chart(frame)


def quality_section(range_name: str) -> None:
    """Live quality: how right the model was on the traffic people labelled, per day and model version."""
    st.subheader("Live quality")
    table = data.live_quality(range_name, data.log_key())
    if table.empty:
        st.info(
            "No labelled traffic in this time range. Labels given on the Predict page or through the API's "
            "feedback endpoint, linked to a logged prediction, show here (and in the Dagster live_quality asset).",
            icon=":material/info:",
        )
        return
    rows = int(table["rows"].sum())
    right = int((table["tn"] + table["tp"]).sum())
    a, b = st.columns(2)
    a.metric("Labelled predictions", f"{rows:,}")
    b.metric("Accuracy on them", f"{right / rows:.1%}")
    scores = table.melt(
        id_vars=["day", "model_version", "rows"], value_vars=["accuracy", "macro_f1"], var_name="metric"
    )
    chart = (
        alt.Chart(scores)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:O", title="day (UTC)", sort="ascending", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("value:Q", title="score", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("model_version:N", legend=alt.Legend(orient="bottom", title=None)),
            strokeDash=alt.StrokeDash("metric:N", legend=alt.Legend(orient="bottom", title=None)),
            shape=alt.Shape("metric:N", legend=None),  # a single day has points but no line to dash
            tooltip=["day:O", "model_version:N", "metric:N", alt.Tooltip("value:Q", format=".3f"), "rows:Q"],
        )
        .properties(height=240)
    )
    left, right_col = st.columns([2, 1])
    with left:
        st.markdown("**Accuracy and macro-F1 of labelled traffic** (per day and model version)")
        st.altair_chart(chart, width="stretch")
    with right_col:
        st.markdown("**Confusion** (labelled rows of the range: what people say it is, what the model said)")
        tn, fp, fn, tp = (int(table[c].sum()) for c in ("tn", "fp", "fn", "tp"))
        st.dataframe(
            pd.DataFrame({"said real": [tn, fn], "said fake": [fp, tp]}, index=["is real", "is fake"]),
            width="stretch",
        )


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
    verdicts = data.drift_verdicts(history)
    latest = history.set_index("partition").loc[verdicts.latest_day] if verdicts.latest_day else None
    compared_with = latest["model_version"] if latest is not None else None
    if verdicts.latest and verdicts.latest.retrain and champion_version and compared_with != champion_version:
        # the usual end of a drift episode: the retrain it triggered was promoted after this report
        st.warning(
            f"**Latest drift verdict: drift** on {verdicts.latest_day} against the reference of model "
            f"{compared_with}: {components.md_escape(latest['reason'] or 'drift above threshold')}. Model "
            f"{champion_version} serves since then; the next report compares traffic with its reference.",
            icon=":material/published_with_changes:",
        )
    else:
        components.verdict_banner(verdicts, latest["reason"] if latest is not None else "")
    table = history.iloc[::-1].assign(
        retrain=history["retrain"].iloc[::-1].map({True: "requested", False: "—"}),
        variant=history["model_variant"].iloc[::-1].fillna("—"),
    )
    st.dataframe(
        table[["partition", "verdict", "retrain", "n_current", "model_version", "variant", "reason"]].rename(
            columns={"partition": "day", "n_current": "predictions", "model_version": "model version"}
        ),
        hide_index=True,
        width="stretch",
    )

    judged = history[history["status"] != "insufficient_data"]
    if judged.empty:
        return
    plot = judged.assign(status=judged["drifted"].map({True: "drift", False: "ok"}))
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

    partitions = list(judged["partition"])[::-1]
    chosen = st.selectbox("Report of", partitions, index=0, key="drift_partition")
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
    row = judged.set_index("partition").loc[chosen]
    st.caption(
        f"{summary.get('n_current', '?')} logged predictions compared with {summary.get('n_reference', '?')} reference "
        f"rows · model {row['model_version'] or '?'}"
        + (f" ({row['model_variant']})" if isinstance(row["model_variant"], str) else "")
    )
    report_section(chosen)


def report_section(day: str) -> None:
    """The day's Evidently report, full width, with a link that opens it alone."""
    report = data.drift_report_html(day)
    if report is None:
        st.warning(f"The HTML report of {day} is missing.")
        return
    st.markdown(f"**Evidently drift report** of {day} · [open it alone]({REPORT_VIEW}?{REPORT_PARAM}={day})")
    components.sandboxed_html(report, height=900)
    st.download_button(
        "Download the HTML report", report.encode("utf-8"), file_name=f"drift_report_{day}.html", mime="text/html"
    )


def report_alone(day: str) -> None:
    """``/monitoring?report=<day>``: one day's Evidently report, nothing else (the link above; item 4's asset link)."""
    st.markdown(f"[← Monitoring]({REPORT_VIEW}) · Evidently drift report of **{components.md_escape(day)}**")
    if not data.is_partition_key(day):
        components.show_error(f"{day!r} is not a day (YYYY-MM-DD)")
        return
    report = data.drift_report_html(day)
    if report is None:
        st.warning(f"No HTML report for {day}: too little traffic that day, or no drift report yet.")
        return
    components.sandboxed_html(report, height=1400)


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
    # a rule per threshold value: drawn across the chart even when there is a single report
    limit = (
        alt.Chart(frame[[threshold]].dropna().drop_duplicates())
        .mark_rule(strokeDash=[6, 4], color="black")
        .encode(y=f"{threshold}:Q", tooltip=[alt.Tooltip(f"{threshold}:Q", title="threshold", format=".3f")])
    )
    return (line + limit + points).properties(height=240)


def main() -> None:
    alone = st.query_params.get(REPORT_PARAM)
    if alone:
        report_alone(alone)
        return
    st.title("Monitoring")
    try:
        champion = data.champion_summary()
    except Exception:  # noqa: BLE001 - the page is about the log; Predict reports a broken champion
        champion = None
    range_name = (
        st.segmented_control("Time range", list(data.RANGES), default="Last 24 hours", key="range") or "Last 24 hours"
    )
    traffic_section(champion["threshold"] if champion else None, range_name)
    quality_section(range_name)
    drift_section(champion["version"] if champion else None)


components.guard(main)
