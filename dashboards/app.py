"""The fakenews dashboard: ``streamlit run dashboards/app.py`` or ``fakenews dashboard``.

Four pages (``dashboards/pages``): Predict, Monitoring, Models, Pipeline. They read the same stores as the
API and the Dagster assets (FAKENEWS_HOME, the prediction log) and talk to Dagster over its GraphQL API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a source checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from dashboards import components, data  # noqa: E402 - after the sys.path fix above
from dashboards.dagster_client import display_url, webserver_url  # noqa: E402

st.set_page_config(page_title="fakenews", page_icon=":material/newspaper:", layout="wide")
st.set_option("client.showErrorDetails", "none")

PAGES_DIR = Path(__file__).parent / "pages"
pages = [
    st.Page(PAGES_DIR / "predict.py", title="Predict", icon=":material/search:", default=True),
    st.Page(PAGES_DIR / "monitoring.py", title="Monitoring", icon=":material/monitoring:"),
    st.Page(PAGES_DIR / "models.py", title="Models", icon=":material/model_training:"),
    st.Page(PAGES_DIR / "pipeline.py", title="Pipeline", icon=":material/account_tree:"),
]
navigation = st.navigation(pages)


def sidebar() -> None:
    with st.sidebar:
        st.markdown("### :material/newspaper: fakenews")
        try:
            champion = data.champion_summary()
        except Exception as exc:  # noqa: BLE001 - a broken champion must not take the sidebar down
            st.warning(f"Production model: unreadable ({components.md_escape(components.safe_message(exc))})")
        else:
            if champion is None:
                st.caption("Production model: none promoted yet")
            else:
                st.caption("Production model")
                st.code(champion["version"], language=None)
        st.caption(f"Prediction log: {data.log_kind()} · Dagster: {components.md_escape(display_url(webserver_url()))}")


sidebar()
navigation.run()
