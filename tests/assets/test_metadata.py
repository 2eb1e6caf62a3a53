"""The metadata a Dagster user reads on the asset pages, from a real materialized tiny lifecycle: numbers rounded to
what they mean (floats, so the UI plots them), metrics and training history as tables, plots inline, locations as
paths relative to the artifact store."""

from __future__ import annotations

import math

import dagster as dg

from fakenews_assets.metadata import rounded, rounded_json


def _events(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Asset name (or check name) -> its raw metadata values, as the instance stores them."""
    found = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            found[materialization.asset_key.to_user_string()] = dict(materialization.metadata)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            found[event.event_specific_data.check_name] = dict(event.event_specific_data.metadata)
    return found


def _is_rounded(value: float) -> bool:
    return not math.isfinite(value) or rounded(value) == value


def _floats(value):
    """Every float in a JSON-like value."""
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _floats(item)


def test_every_number_is_rounded_and_tables_replace_blobs(promoted_home):
    events = _events(promoted_home.run.result)
    home = str(promoted_home.home)
    seen = {"float": 0, "table": 0, "json": 0}
    for owner, metadata in events.items():
        for key, value in metadata.items():
            where = f"{owner}.{key}"
            if isinstance(value, dg.FloatMetadataValue):
                seen["float"] += 1
                assert _is_rounded(value.value), f"{where} = {value.value!r}"
            elif isinstance(value, dg.TableMetadataValue):
                seen["table"] += 1
                kinds = {c.name: c.type for c in value.schema.columns}
                for record in value.records:
                    for column, cell in record.data.items():
                        if kinds[column] == "float" and cell is not None:
                            assert isinstance(cell, float) and _is_rounded(cell), f"{where}[{column}] = {cell!r}"
            elif isinstance(value, dg.JsonMetadataValue):
                seen["json"] += 1
                assert all(_is_rounded(f) for f in _floats(value.data)), f"{where} = {value.data}"
            elif isinstance(value, dg.PathMetadataValue):
                assert not value.path.startswith("/") and home not in value.path, f"{where} = {value.path}"
            elif isinstance(value, dg.TextMetadataValue | str):
                assert home not in str(getattr(value, "text", value)), where
    assert seen["float"] >= 20 and seen["table"] >= 15 and seen["json"] >= 3, seen

    trained = events["trained_model"]
    assert isinstance(trained["metrics"], dg.TableMetadataValue)
    assert [c.name for c in trained["metrics"].schema.columns] == ["metric", "val", "test"]
    metrics = {r.data["metric"]: r.data for r in trained["metrics"].records}
    assert {"macro_f1", "roc_auc", "ece", "rows", "threshold"} <= set(metrics)
    # the key metrics also as floats (plotted across materializations), equal to the table's cells
    for name in ("macro_f1", "roc_auc", "accuracy"):
        assert isinstance(trained[f"test_{name}"], dg.FloatMetadataValue)
        assert trained[f"test_{name}"].value == metrics[name]["test"]
    history = trained["history"]
    assert isinstance(history, dg.TableMetadataValue) and history.records
    assert {"epoch", "step"} <= {c.name for c in history.schema.columns}
    assert (
        isinstance(trained["plots"], dg.MarkdownMetadataValue) and "data:image/png;base64," in trained["plots"].md_str
    )
    assert isinstance(trained["bundle"], dg.PathMetadataValue) and trained["bundle"].path.startswith("models/")
    floats = [k for k, v in trained.items() if isinstance(v, dg.FloatMetadataValue)]
    assert len(floats) <= 8, floats  # a few plotted numbers, not the table repeated

    evaluation = events["model_evaluation"]
    assert isinstance(evaluation["metrics"], dg.TableMetadataValue)
    assert isinstance(evaluation["challenger_macro_f1"], dg.FloatMetadataValue)

    production = events["production_model"]
    assert isinstance(production["champion"], dg.PathMetadataValue)
    assert production["artifact_store"].url == promoted_home.home.resolve().as_uri()

    # the Great Expectations results one click away: a table on the check, one row per expectation
    results = events["news_quality_suite"]["results"]
    assert isinstance(results, dg.TableMetadataValue) and {"check", "passed", "observed"} <= {
        c.name for c in results.schema.columns
    }


def test_rounding_keeps_what_a_number_means():
    assert rounded(0.805412345) == 0.8054 and rounded(1897.0) == 1897.0 and rounded(12.3456, 1) == 12.3
    assert rounded(3.2154e-5) == 3.22e-5  # a learning rate is not rounded to zero
    assert rounded(0.0) == 0.0 and rounded(None) is None and math.isnan(rounded(float("nan")))
    assert rounded_json({"lr": 3.2154e-5, "a": [0.123456, True, 3], "n": None}) == {
        "lr": 3.22e-5, "a": [0.1235, True, 3], "n": None
    }  # fmt: skip
