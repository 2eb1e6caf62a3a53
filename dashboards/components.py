"""Small pieces every page uses: the error guard, text that is safe to show, and a few visuals.

Rules these helpers keep: user text (headlines, column names, file names) is never rendered as Markdown
or HTML, and no absolute path of this machine reaches the page (error messages are scrubbed).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

log = logging.getLogger("dashboards")

FAKE_COLOR = "#d62728"
REAL_COLOR = "#2ca02c"
LABEL_COLORS = alt.Scale(domain=["real", "fake"], range=[REAL_COLOR, FAKE_COLOR])

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=\"'&])")
# An absolute path: a slash not preceded by a word character, ':' or another slash (so URLs stay whole),
# then at least one folder.
_ABS_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s/'\"(),;]+/)+([^\s/'\"(),;]*)")


def md_escape(text: object) -> str:
    """``text`` with every Markdown (and Streamlit directive) character escaped: shown literally."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def md_code(text: object) -> str:
    """``text`` as inline code (shown literally; a backtick inside would end the span, so it is replaced)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def scrub_paths(text: str) -> str:
    """``text`` with this machine's absolute paths replaced: FAKENEWS_HOME by its name, others by '…/name'."""
    from fakenews_ml.environment import fakenews_home

    home = str(fakenews_home())
    text = text.replace(home, "$FAKENEWS_HOME")
    return _ABS_PATH.sub(lambda m: f"…/{m.group(1)}" if m.group(1) else "…/", text)


def safe_message(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return scrub_paths(message)


def show_error(message: str) -> None:
    """An error box whose text is shown literally (it may quote a file name or a column)."""
    st.error(md_escape(message), icon=":material/error:")


def guard(page: Callable[[], None]) -> None:
    """Run a page body; an unexpected error becomes one clear message (the traceback goes to the server
    log, never to the page). Streamlit's own control flow (rerun, stop) passes through."""
    try:
        page()
    except ScriptControlException:
        raise
    except Exception as exc:  # the last line of defence: the other pages keep working
        log.exception("dashboard page failed")
        st.error(
            f"This page ran into a problem and stopped: {md_escape(type(exc).__name__)}: {md_escape(safe_message(exc))}. "
            "The other pages keep working; the details are in the dashboard's server log.",
            icon=":material/warning:",
        )


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None or pd.isna(moment):
        return "never"
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def fmt_time(moment: datetime | None) -> str:
    if moment is None or pd.isna(moment):
        return "—"
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_bytes(size: float | None) -> str:
    if size is None or pd.isna(size):
        return "—"
    size = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def verdict_word(label: int) -> str:
    return "fake" if int(label) == 1 else "real"


def probability_meter(prob_fake: float, threshold: float, height: int = 115) -> alt.Chart:
    """A horizontal meter 0..1: green below the model's threshold, red above, a black marker at P(fake).
    Every mark spans a hidden 0..1 y scale, so that each fills the plot; in Streamlit the height includes
    the axis and its title (about 80 px)."""
    scale = alt.Scale(domain=[0, 1])
    y, y2 = alt.Y("lo:Q", axis=None, scale=alt.Scale(domain=[0, 1])), alt.Y2("hi:Q")
    bands = pd.DataFrame(
        {"start": [0.0, threshold], "end": [threshold, 1.0], "zone": ["real", "fake"], "lo": 0.0, "hi": 1.0}
    )
    band = (
        alt.Chart(bands)
        .mark_rect(opacity=0.3)
        .encode(
            x=alt.X("start:Q", scale=scale, title="probability the headline is fake", axis=alt.Axis(format="%")),
            x2="end:Q",
            y=y,
            y2=y2,
            color=alt.Color("zone:N", scale=LABEL_COLORS, legend=None),
            tooltip=[alt.Tooltip("zone:N", title="verdict in this zone")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"t": [threshold], "lo": 0.0, "hi": 1.0}))
        .mark_rule(strokeDash=[4, 3], color="#555555")
        .encode(
            x=alt.X("t:Q", scale=scale),
            y=y,
            y2=y2,
            tooltip=[alt.Tooltip("t:Q", title="decision threshold", format=".3f")],
        )
    )
    marker = (
        alt.Chart(pd.DataFrame({"p": [prob_fake], "lo": 0.0, "hi": 1.0}))
        .mark_rule(strokeWidth=6, color="black")
        .encode(x=alt.X("p:Q", scale=scale), y=y, y2=y2, tooltip=[alt.Tooltip("p:Q", title="P(fake)", format=".3f")])
    )
    return (band + rule + marker).properties(height=height)


def sandboxed_html(document: str, height: int = 900) -> None:
    """Show a full HTML document (an Evidently report) in an iframe that may run its own scripts but has
    no access to the dashboard: an inner ``sandbox="allow-scripts"`` frame without same-origin rights.
    The report quotes logged headlines, which are untrusted input."""
    wrapper = (
        "<!doctype html><html><head><meta charset='utf-8'><style>html,body{margin:0;height:100%}"
        "iframe{border:0;width:100%;height:100%}</style></head><body>"
        f"<iframe sandbox='allow-scripts allow-popups' referrerpolicy='no-referrer' srcdoc=\"{html.escape(document, quote=True)}\"></iframe>"
        "</body></html>"
    )
    st.iframe(wrapper, height=height)


def verdict_banner(overview, reasons: str = "") -> None:
    """The drift verdict as both Monitoring and Pipeline show it (``fakenews_ml.monitoring.verdict.DriftOverview``):
    the newest judged day's verdict, then every day whose check failed, the same words on both pages."""
    failed = ", ".join(f"{day} ({overview_label(overview, day)})" for day in overview.failed_days[:7])
    more = f" and {len(overview.failed_days) - 7} more" if len(overview.failed_days) > 7 else ""
    tail = f" Failed drift checks: {len(overview.failed_days)} day(s): {failed}{more}." if failed else ""
    if overview.latest is None:
        st.info(f"**No day judged yet** (too little traffic on every day so far).{tail}", icon=":material/info:")
    elif overview.latest.retrain:
        detail = f": {md_escape(reasons)}" if reasons else ""
        st.error(
            f"**Latest drift verdict: drift** on {overview.latest_day}{detail}. The drift sensor requests a retrain "
            f"(once per day, after its cooldown).{tail}",
            icon=":material/crisis_alert:",
        )
    else:
        box = st.warning if overview.drifted_days else st.success
        box(f"**Latest drift verdict: passed** on {overview.latest_day}.{tail}", icon=":material/check_circle:")


def overview_label(overview, day: str) -> str:
    from fakenews_ml.monitoring.verdict import verdict_of

    return verdict_of(overview.days[day]).label
