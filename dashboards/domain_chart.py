"""Monitoring's out-of-domain chart: per day, the share of served headlines that lay outside what the model
was trained on. A per-request early signal: a drift report only says so once per day, for the whole day."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st


def daily_out_of_domain(frame: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day and model version: ``scored`` predictions, ``outside`` of them flagged, and ``share``.
    Rows without a score (logged before it existed, or by a bundle without a domain profile) are left out."""
    if "out_of_domain" not in frame.columns:
        return pd.DataFrame(columns=["day", "model_version", "scored", "outside", "share"])
    scored = frame[frame["out_of_domain"].notna()]
    daily = (
        scored.assign(
            day=scored["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d"),
            flag=scored["out_of_domain"].astype(bool).astype(int),
        )
        .groupby(["day", "model_version"])
        .agg(scored=("flag", "size"), outside=("flag", "sum"))
        .reset_index()
    )
    return daily.assign(share=daily["outside"] / daily["scored"])


def out_of_domain_chart(frame: pd.DataFrame) -> None:
    """The chart (or a caption saying why there is none) for the logged predictions in ``frame``."""
    daily = daily_out_of_domain(frame)
    st.markdown("**Out of domain** (share of headlines per day outside what the model was trained on, UTC days)")
    if daily.empty:
        st.caption("No out-of-domain scores in this range: the serving model has no domain profile (retrain it).")
        return
    chart = (
        alt.Chart(daily)
        .mark_bar()
        .encode(
            # one band per logged day, as the other daily charts: a time axis spread one day over two ticks
            x=alt.X("day:O", title=None, sort="ascending", axis=alt.Axis(labelAngle=-30)),
            xOffset="model_version:N",
            y=alt.Y("share:Q", title="share out of domain", axis=alt.Axis(format="%")),
            color=alt.Color("model_version:N", legend=alt.Legend(orient="bottom", title=None)),
            tooltip=[
                alt.Tooltip("day:O", title="day (UTC)"),
                "model_version:N",
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("outside:Q", title="outside"),
                alt.Tooltip("scored:Q", title="scored"),
            ],
        )
        .properties(height=220)
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        "About 1% is normal (the threshold is the 99th percentile of the validation split); a rising share "
        "means traffic the model was not trained for, before a daily drift report says so."
    )
