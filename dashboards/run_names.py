"""What a Dagster run is called on the Pipeline page: the job's name, or for an ad-hoc materialization (Dagster's
internal ``__ASSET_JOB``) the words "asset materialization" and the assets it selected."""

from __future__ import annotations

from collections.abc import Sequence

SHOWN_ASSETS = 3


def job_label(job: str, assets: Sequence[str] = ()) -> str:
    if not job.startswith("__"):
        return job
    if not assets:
        return "asset materialization"
    shown = ", ".join(assets[:SHOWN_ASSETS])
    more = f" +{len(assets) - SHOWN_ASSETS} more" if len(assets) > SHOWN_ASSETS else ""
    return f"asset materialization: {shown}{more}"
