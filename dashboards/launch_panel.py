"""The Pipeline page's retrain button: one click shows what a launch will do (the job, its code location, the
assets it materializes, the run config drift-triggered retrains use, FAKENEWS_RETRAIN_RUN_CONFIG); Confirm
launches it through Dagster's GraphQL API, Cancel forgets it."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboards import components
from dashboards.dagster_client import RETRAIN_JOB_ENV, DagsterClient, DagsterError, Overview


def launch_plan(client: DagsterClient, target: tuple[str, str, str]) -> dict:
    """What "Launch" will do: the job, its code location, the assets it materializes, the run config."""
    from fakenews_ml.environment import RETRAIN_RUN_CONFIG_ENV, retrain_run_config

    location, repository, job = target
    try:
        assets = client.job_assets(location, repository, job)
    except DagsterError as exc:
        assets = None  # launching still works; the plan says why the list is missing
        assets_error = components.safe_message(exc)
    else:
        assets_error = None
    try:
        run_config, source = retrain_run_config(), RETRAIN_RUN_CONFIG_ENV
    except (OSError, ValueError, TypeError) as exc:  # a broken file: nothing is launched with it
        return {"job": job, "location": location, "assets": assets, "error": components.safe_message(exc)}
    return {
        "job": job,
        "location": location,
        "assets": assets,
        "assets_error": assets_error,
        "run_config": run_config,
        "config_from": f"from the file {components.md_code(source)} names"
        if run_config
        else "each asset's defaults (as on the launchpad)",
    }


def launch_section(client: DagsterClient, info: Overview, on_launch: Callable[[], None]) -> None:
    """The retrain button; ``on_launch`` runs after a launch (the page clears its cached overview)."""
    target = client.find_job(info)
    st.subheader("Retrain")
    if target is None:
        st.warning(
            f"No retrain job found in the workspace (set {RETRAIN_JOB_ENV}); jobs: "
            f"{components.md_escape(', '.join(sorted({j for _, _, j in info.jobs})) or 'none')}."
        )
        return
    location, repository, job = target
    st.caption(
        f"Launches the {components.md_code(job)} job of code location {components.md_code(location)}: re-read the "
        "sources (with the feedback labels), retrain, and promote only through the gate."
    )
    if st.button(f"Launch {job}…", type="primary", key="launch_retrain", icon=":material/rocket_launch:"):
        st.session_state["launch_plan"] = launch_plan(client, target)
        st.session_state.pop("launch_result", None)
    plan = st.session_state.get("launch_plan")
    if plan is not None:
        confirm_launch(client, target, plan, on_launch)
    result = st.session_state.get("launch_result")
    if result is not None:
        if result.ok:
            st.success(
                f"Launched **{components.md_escape(result.job)}**: run {components.md_code(result.run_id)}.",
                icon=":material/rocket_launch:",
            )
            st.link_button("Open the run in the Dagster UI", result.run_url)
        else:
            components.show_error(result.message)


def confirm_launch(
    client: DagsterClient, target: tuple[str, str, str], plan: dict, on_launch: Callable[[], None]
) -> None:
    """The plan, then Confirm or Cancel: nothing is launched by one click."""
    location, repository, job = target
    with st.container(border=True):
        assets = plan["assets"]
        if assets is None:
            st.markdown(
                f"**Launch {components.md_code(job)}?** Code location {components.md_code(location)}; Dagster could "
                f"not list its assets ({components.md_escape(plan.get('assets_error'))})."
            )
        else:
            st.markdown(
                f"**Launch {components.md_code(job)}?** Code location {components.md_code(location)} will "
                f"materialize {len(assets)} asset(s):"
            )
            st.markdown(", ".join(components.md_code(a) for a in assets) or "none")
        if "error" in plan:
            components.show_error(f"The retrain run config cannot be read: {plan['error']}")
        else:
            st.markdown(f"Run config: {plan['config_from']}")
            st.json(plan["run_config"], expanded=True)
        left, right = st.columns(2)
        if left.button("Confirm launch", type="primary", key="confirm_launch", disabled="error" in plan):
            st.session_state["launch_result"] = client.launch_job(location, repository, job, plan["run_config"])
            st.session_state.pop("launch_plan", None)
            on_launch()
            st.rerun()
        if right.button("Cancel", key="cancel_launch"):
            st.session_state.pop("launch_plan", None)
            st.rerun()
