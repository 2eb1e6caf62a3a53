"""Every dashboard page through ``streamlit.testing.v1.AppTest`` (the real app script, in process), against
a real tiny model bundle, a real SQLite prediction log and real drift reports (see conftest.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from fakenews_ml.monitoring.prediction_log import PredictionLog

from .conftest import APP, SECRET_DIR, SIGNED_QUERY, WANDB_URL

TIMEOUT = 120  # the first run imports torch and loads the model
PAGES = ["predict", "monitoring", "models", "pipeline"]


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    if name != "predict":
        at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def page_text(at: AppTest) -> str:
    """Everything a reader sees as text (tables included)."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "code",
        "text",
        "error",
        "warning",
        "info",
        "success",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [b.label for b in at.button]
    parts += [e.value.to_string() for e in at.dataframe]
    parts += [getattr(e.proto, "url", "") for e in at.get("link_button")]
    return "\n".join(parts)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def classify_headline(at: AppTest, text: str) -> AppTest:
    at.text_area(key="headline_text").input(text)
    return button(at, "Classify").click().run()


def log_rows() -> pd.DataFrame:
    with PredictionLog() as log:
        return log.recent(100_000)


# ----- Predict ------------------------------------------------------------------------------------------


def test_predict_classifies_a_headline_and_logs_it_with_origin_dashboard(dashboard_home):
    at = open_page("predict")
    headline = "Shocking secret the governor exposed again !!!"
    classify_headline(at, headline)
    assert not at.exception and not errors(at)
    verdict = [m.value for m in at.markdown if "Likely" in m.value]
    assert len(verdict) == 1 and ("Likely FAKE" in verdict[0] or "Likely REAL" in verdict[0])
    metrics = {m.label: m.value for m in at.metric}
    assert any(dashboard_home["version"] in m.value.replace("\\", "") for m in at.markdown)
    assert [c.value for c in at.code] == [headline]  # shown as literal text

    row = log_rows().iloc[0]
    assert (row.title, row.origin, row.model_version) == (headline, "dashboard", dashboard_home["version"])
    assert metrics["Probability fake"] == f"{row.prob_fake:.1%}"
    assert ("Likely FAKE" in verdict[0]) == (row.label == 1)


def test_feedback_buttons_store_labels_linked_to_the_prediction():
    at = open_page("predict")
    classify_headline(at, "Council approves the new school budget")
    prediction_id = int(log_rows().iloc[0].id)

    at.button(key=f"fb_fake_{prediction_id}").click().run()
    assert not at.exception
    assert any("Stored your label" in s.value and "fake" in s.value for s in at.success)
    at.button(key=f"fb_real_{prediction_id}").click().run()  # people correct themselves

    with PredictionLog() as log:
        table = log.feedback_table()
        mine = table[table["prediction_id"] == prediction_id]
        assert list(mine["label"]) == [1, 0] and set(mine["source"]) == {"dashboard"}
        assert set(mine["title"]) == {"Council approves the new school budget"}
        latest = log.feedback_frame()
    assert int(latest.loc[latest["title"] == "Council approves the new school budget", "label"].iloc[0]) == 0


def test_a_newly_promoted_champion_is_used_without_a_restart(dashboard_home):
    from fakenews_ml.registry import promote

    at = open_page("predict")
    assert any(dashboard_home["version"] in c.value for c in at.caption)
    promote(dashboard_home["challenger"], reason="test: challenger takes over")
    try:
        at.run()
        assert any(dashboard_home["challenger_version"] in c.value for c in at.caption)
        classify_headline(at, "Farmers protest the new oil prices")
        assert not at.exception
        row = log_rows().iloc[0]
        assert (row.title, row.model_version) == (
            "Farmers protest the new oil prices",
            dashboard_home["challenger_version"],
        )
    finally:
        promote(dashboard_home["champion"], reason="test: champion restored")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "The headline is empty"),
        ("   \n\t  ", "The headline is empty"),
        ("x" * 1_048_576, "1,048,576 characters long; the limit is 1,000"),
        ("y" * 1_001, "1,001 characters long"),
    ],
    ids=["empty", "whitespace", "one-megabyte", "just-over-the-limit"],
)
def test_bad_headlines_get_a_clear_error_and_are_not_logged(text, expected):
    at = open_page("predict")
    before = len(log_rows())
    classify_headline(at, text)
    assert not at.exception
    assert any(expected in e for e in errors(at)), errors(at)
    assert not [m for m in at.markdown if "Likely" in m.value]
    assert len(log_rows()) == before


def test_csv_upload_is_classified_shown_logged_offered_for_download_and_takes_feedback(dashboard_home):
    titles = [f"Minister announces report number {i} on the court ruling" for i in range(23)]
    # a 'label' column of the user's own must survive, renamed, not overwritten
    csv = pd.DataFrame({"title": titles, "label": ["mine"] * 23, "note": range(23)}).to_csv(index=False).encode()
    at = open_page("predict")
    at.file_uploader(key="csv_upload").upload("headlines.csv", csv, "text/csv").run()
    assert not errors(at)
    button(at, "Classify 23 headline(s)").click().run()
    assert not at.exception and not errors(at)
    assert at.get("progress"), "no progress bar"

    editor = at.data_editor[0]
    shown = editor.value
    assert list(shown["title"]) == titles and set(shown["verdict"]) <= {"fake", "real"}

    logged = log_rows().head(23).iloc[::-1]
    assert list(logged["title"]) == titles
    assert set(logged["origin"]) == {"dashboard"} and logged["request_id"].nunique() == 1
    # P(fake) is a bar in the red column when the verdict is fake and in the green one when it is real
    bars = shown["fake_bar"].fillna(shown["real_bar"])
    assert list(bars.round(6)) == list(logged["prob_fake"].round(6))
    is_fake = shown["verdict"] == "fake"
    assert shown["fake_bar"].notna().eq(is_fake).all() and shown["real_bar"].notna().eq(~is_fake).all()
    columns = {c.get("label"): c for c in json.loads(editor.proto.columns).values()}
    assert columns["P(fake) · fake"]["type_config"]["color"] == "red"
    assert columns["P(fake) · real"]["type_config"]["color"] == "green"

    download = at.get("download_button")[0]
    assert download.proto.label == "Download results (CSV)"

    # feedback on two rows through the editor's "your label" column
    at.session_state[editor.key] = {
        "edited_rows": {0: {"your_label": "fake"}, 5: {"your_label": "real"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    button(at, "Store 2 label(s)").click().run()
    assert not at.exception
    assert any("Stored 2 label(s)" in s.value for s in at.success)
    with PredictionLog() as log:
        table = log.feedback_table()
    ids = list(logged["id"])
    stored = table[table["prediction_id"].isin([ids[0], ids[5]])].sort_values("prediction_id")
    assert list(stored["label"]) == [1, 0] and set(stored["source"]) == {"dashboard"}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("no_title.csv", b"headline,label\nSomething happened,0\n", "no 'title' column"),
        ("latin1.csv", "title\nCaf\u00e9 owner wins the lottery\n".encode("latin-1"), "not valid UTF-8"),
        ("empty.csv", b"", "the file is empty"),
        ("blank_rows.csv", b"title\nfine headline\n\n  \n", None),  # blank lines are skipped by the CSV reader
        ("blank_title.csv", b"title,x\nfine headline,1\n ,2\n", "empty title (CSV line(s) 3)"),
        ("huge.csv", b"title\n" + b"a" * 6_000_000, "6.0 MB; the limit is 5.0 MB"),
        ("many_rows.csv", b"title\n" + b"h\n" * 10_001, "10,001 rows; the limit is 10,000"),
        ("long_title.csv", b"title\nok\n" + b"z" * 1_200 + b"\n", "longer than 1,000 characters (CSV line(s) 3)"),
        ("[click me](https://evil.example).csv", b"a,b\n1,2\n", "no 'title' column"),
    ],
    ids=[
        "no-title-column",
        "not-utf8",
        "empty-file",
        "blank-lines",
        "blank-title",
        "too-big",
        "too-many-rows",
        "title-too-long",
        "markdown-in-name",
    ],
)
def test_bad_uploads_get_a_clear_error_and_nothing_is_classified(name, content, expected):
    at = open_page("predict")
    before = len(log_rows())
    at.file_uploader(key="csv_upload").upload(name, content, "text/csv").run()
    assert not at.exception
    if expected is None:
        assert not errors(at)
        return
    assert any(expected in e.replace("\\", "") for e in errors(at)), errors(at)
    assert not [b for b in at.button if b.label.startswith("Classify ")]
    assert len(log_rows()) == before
    if name.startswith("[click"):
        # the file name is shown literally, never as a link
        assert all("[click me](" not in e for e in errors(at))


# ----- Monitoring ---------------------------------------------------------------------------------------


def test_monitoring_shows_traffic_charts_drift_status_and_the_report(dashboard_home):
    at = open_page("monitoring")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Predictions"].replace(",", "")) >= dashboard_home["traffic"]["n"]
    assert int(metrics["Feedback labels (all time)"].replace(",", "")) >= 2
    assert int(metrics["Model versions seen"]) >= 2
    charts = at.get("vega_lite_chart")
    # volume, fake rate, confidence histogram, live quality, drift share, embedding drift, drift per feature (and
    # the out-of-domain share once a prediction with a score was logged: the Predict tests log some)
    assert len(charts) == 7 + int(log_rows()["out_of_domain"].notna().any())
    specs = " ".join(c.proto.spec for c in charts)
    for field in ("origin", "fake_rate", "prob_fake", "metric", "drift_share_threshold", "embedding_threshold"):
        assert field in specs
    assert '"formatType": "utc"' in specs and "time (UTC)" in specs and "%H:%M" in specs  # 24-hour UTC axes
    drifted_day, calm_day = dashboard_home["drift"]["days"]["drifted"], dashboard_home["drift"]["days"]["calm"]
    banner = [e.value for e in at.error if "Latest drift verdict: drift" in e.value]
    assert banner and drifted_day in banner[0] and f"Failed drift checks: 1 day(s): {drifted_day} (drift)" in banner[0]
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert verdicts.set_index("day")["verdict"].to_dict() == {drifted_day: "drift", calm_day: "passed"}
    assert verdicts.set_index("day")["retrain"].to_dict() == {drifted_day: "requested", calm_day: "—"}
    assert at.get("iframe"), "the Evidently report is not embedded"
    assert any(f"monitoring?report={drifted_day}" in m.value for m in at.markdown)  # open it alone

    # the calm day's report, chosen from the list
    at.selectbox(key="drift_partition").select(calm_day).run()
    assert not at.exception
    assert at.get("iframe")


def test_a_threshold_line_is_drawn_with_a_single_report():
    import json

    from dashboards.pages.monitoring import _score_chart

    one = pd.DataFrame({"partition": ["2024-05-01"], "drift_share": [0.2], "drift_share_threshold": [0.5]})
    one = one.assign(n_current=300, status="ok")
    spec = json.dumps(_score_chart(one, "drift_share", "drift_share_threshold", "drift share", None).to_dict())
    assert '"rule"' in spec and spec.count('"drift_share_threshold": 0.5') >= 1


def test_a_drift_report_opens_alone_and_a_bad_day_is_refused(dashboard_home):
    drifted_day = dashboard_home["drift"]["days"]["drifted"]
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["report"] = drifted_day
    at.run()
    at.switch_page("pages/monitoring.py")
    at.query_params["report"] = drifted_day
    at.run()
    assert not at.exception and len(at.get("iframe")) == 1 and not at.metric  # the report, nothing else
    at.query_params["report"] = "../../etc"
    at.run()
    assert not at.get("iframe") and any("is not a day" in e for e in errors(at))


def test_monitoring_shows_live_quality_of_the_labelled_traffic(dashboard_home):
    at = open_page("monitoring")
    at.button_group(key="range").set_value("Everything").run()
    with PredictionLog() as log:
        labelled = log.labelled_predictions("1970-01-01", "2100-01-01")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Labelled predictions"].replace(",", "")) == len(labelled) >= 2
    right = (labelled["label"] == labelled["predicted"]).mean()
    assert metrics["Accuracy on them"] == f"{right:.1%}"
    confusion = next(d.value for d in at.dataframe if "said fake" in d.value.columns)
    assert int(confusion.to_numpy().sum()) == len(labelled)
    assert int(confusion.loc["is fake", "said fake"]) == int(
        ((labelled["label"] == 1) & (labelled["predicted"] == 1)).sum()
    )


def test_after_a_promotion_the_last_drift_failure_is_shown_as_answered(dashboard_home):
    from fakenews_ml.registry import promote

    drifted_day = dashboard_home["drift"]["days"]["drifted"]
    promote(dashboard_home["challenger"], reason="test: retrained after drift")
    try:
        at = open_page("monitoring")
        assert not any("Latest drift verdict" in e.value for e in at.error)
        notes = [w.value for w in at.warning if "Latest drift verdict: drift" in w.value]
        assert notes and drifted_day in notes[0]
        assert f"reference of model {dashboard_home['version']}" in notes[0]
        assert f"Model {dashboard_home['challenger_version']} serves since then" in notes[0]
    finally:
        promote(dashboard_home["champion"], reason="test: champion restored")


def test_monitoring_time_range_switches(dashboard_home):
    at = open_page("monitoring")
    at.button_group(key="range").set_value("Last hour").run()
    assert not at.exception
    hour = int({m.label: m.value for m in at.metric}["Predictions"].replace(",", ""))
    at.button_group(key="range").set_value("Everything").run()
    everything = int({m.label: m.value for m in at.metric}["Predictions"].replace(",", ""))
    assert hour < everything  # the seeded traffic spans 20 hours


# ----- Models -------------------------------------------------------------------------------------------


def test_models_lists_the_registry_with_the_champion_marked(dashboard_home):
    at = open_page("models")
    table = at.dataframe[0].value
    rows = {r["version"]: r for _, r in table.iterrows()}
    assert set(rows) == {dashboard_home["version"], dashboard_home["challenger_version"]}
    assert rows[dashboard_home["version"]][""] == "★ champion" and rows[dashboard_home["challenger_version"]][""] == ""
    assert "fakenewsnet_titles.csv" in rows[dashboard_home["version"]]["trained on"]
    assert "int8" in rows[dashboard_home["version"]]["variants"]

    text = page_text(at)
    assert f"Champion {dashboard_home['version']}" in text
    variants = at.dataframe[1].value
    assert list(variants["variant"]) == ["fp32", "int8"] and variants["size"].str.endswith("MB").all()
    captions = [c for img in at.get("image") for c in img.captions]
    assert captions[:2] == ["Confusion matrix (test split)", "ROC curve (test split)"]
    assert [b.proto.url for b in at.get("link_button")] == [WANDB_URL]
    assert "test: first champion" in at.dataframe[-1].value.to_string()

    at.selectbox(key="bundle_choice").select(dashboard_home["challenger_version"]).run()
    assert not at.exception
    assert f"Bundle {dashboard_home['challenger_version']}" in page_text(at)


# ----- Pipeline -----------------------------------------------------------------------------------------


def test_pipeline_says_plainly_when_dagster_is_not_reachable():
    at = open_page("pipeline")
    warnings = [w.value for w in at.warning]
    assert any("Dagster is not reachable" in w for w in warnings), warnings
    assert not at.exception and not errors(at)
    # and the other pages still work
    at.switch_page("pages/models.py").run()
    assert not at.exception and at.dataframe


# ----- all pages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_no_absolute_path_or_secret_on_any_page(name, dashboard_home):
    at = open_page(name)
    text = page_text(at)
    for secret in (str(dashboard_home["home"]), str(dashboard_home["home"].parent), SECRET_DIR, SIGNED_QUERY, "/tmp/"):
        assert secret not in text, f"{secret!r} shown on the {name} page"


def test_every_page_is_calm_without_any_model_log_or_report(empty_home):
    at = open_page("predict")
    assert any("No production model yet" in i.value for i in at.info)
    at.switch_page("pages/monitoring.py").run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "No predictions in this time range" in infos and "No drift report yet" in infos
    at.switch_page("pages/models.py").run()
    assert not at.exception and any("registry is empty" in i.value for i in at.info)


def test_a_broken_champion_is_reported_without_paths_or_traceback(empty_home):
    link = empty_home / "production" / "champion"
    link.parent.mkdir(parents=True)
    link.symlink_to(empty_home / "models" / "gone", target_is_directory=True)
    at = open_page("predict")
    assert not at.exception
    message = " ".join(errors(at)).replace("\\", "")
    assert "could not be loaded" in message and "does not exist" in message
    assert str(empty_home) not in message
    at.switch_page("pages/models.py").run()  # the registry page reports it through its guard
    assert not at.exception
    assert str(empty_home) not in page_text(at)
