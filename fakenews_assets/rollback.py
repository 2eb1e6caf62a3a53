"""The ``rollback_champion`` job: `fakenews models rollback` for people who work in the Dagster UI.

Launch it from the launchpad with the version to restore (or leave ``version`` empty for the champion before
the current one). It re-points the champion through the registry, exactly as the CLI does: atomically, only
if nobody promoted another model meanwhile, recorded in the promotion history; a running API serves the
restored model within a second. The change is also recorded on the ``production_model`` asset as an
observation, so its page shows which champion serves now.
"""

import dagster as dg
from pydantic import Field

from fakenews_ml.errors import FakeNewsError


class RollbackChampionConfig(dg.Config):
    version: str = Field(
        default="",
        description="bundle version to make the champion again, or a unique prefix of one "
        "(`fakenews models list`); empty = the champion before the current one",
    )
    reason: str = Field(default="", description="why (kept in the promotion history)")


@dg.op(description="Re-point the production champion at an earlier bundle (see the job's description).")
def rollback_champion_op(context: dg.OpExecutionContext, config: RollbackChampionConfig) -> None:
    from fakenews_ml.registry import rollback

    try:
        done = rollback(config.version.strip() or None, reason=config.reason or "rollback from the Dagster UI")
    except FakeNewsError as exc:
        raise dg.Failure(description=f"not rolled back: {exc}") from None
    context.log_event(
        dg.AssetObservation(
            asset_key=dg.AssetKey("production_model"),
            metadata={
                "champion_version": done["version"],
                "champion": done["location"],
                "rolled_back_from": done["previous_version"] or done["previous"],
            },
        )
    )
    context.log.info(f"champion is now {done['version']} (was {done['previous_version']})")


@dg.job(
    description="Roll the production champion back to an earlier bundle (config: version, empty = the previous "
    "champion). Atomic and recorded in the promotion history; the API picks it up without a restart. "
    "Same as `fakenews models rollback`.",
    tags={"kind": "registry"},
)
def rollback_champion():
    rollback_champion_op()
