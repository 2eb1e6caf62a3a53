"""The dashboard's building blocks without a page: input checks, safe text, registry records, the Dagster
client's queries (validated against Dagster's own GraphQL schema) and failure modes, and the CLI command."""

from __future__ import annotations

import time

import pytest

from dashboards import components
from dashboards.dagster_client import (
    CHECK_EXECUTIONS_QUERY,
    LAUNCH_MUTATION,
    OVERVIEW_QUERY,
    DagsterClient,
    display_url,
)
from dashboards.data import encoder_name, source_label
from dashboards.inputs import InputProblem, Limits, check_headline, read_upload

from .conftest import APP


def test_headline_limits_reject_rather_than_truncate():
    assert check_headline("  A headline \n") == "A headline"
    assert check_headline("x" * 1000) == "x" * 1000
    with pytest.raises(InputProblem, match="1,001 characters long; the limit is 1,000"):
        check_headline("x" * 1001)
    with pytest.raises(InputProblem, match="empty"):
        check_headline(None)


def test_read_upload_keeps_other_columns_and_strips_titles():
    frame = read_upload("f.csv", b"title,desk\n  Budget passes  ,politics\n")
    assert list(frame.columns) == ["title", "desk"] and frame.loc[0, "title"] == "Budget passes"
    with pytest.raises(InputProblem, match="3 rows; the limit is 2"):
        read_upload("f.csv", b"title\na\nb\nc\n", Limits(max_rows=2))


def test_markdown_is_escaped_and_paths_are_scrubbed(fakenews_home):
    shown = components.md_escape("[click](https://evil.example) **bold** :red[x] <b>")
    assert "[click](" not in shown and "**bold**" not in shown and ":red[" not in shown and "<b>" not in shown
    message = (
        f"{fakenews_home}/models/abc is not a complete model bundle; see /etc/secret/dir/file.txt or https://host/a/b"
    )
    scrubbed = components.scrub_paths(message)
    assert scrubbed == "$FAKENEWS_HOME/models/abc is not a complete model bundle; see …/file.txt or https://host/a/b"
    assert components.md_code("a`b") == "`a'b`"


def test_sources_and_encoders_are_named_without_local_folders_or_credentials(tmp_path):
    assert source_label("/srv/data/secret/fakenewsnet_titles.csv") == "fakenewsnet_titles.csv"
    assert (
        source_label("https://user:pw@zenodo.org/records/1/files/WELFake.csv?token=abc") == "WELFake.csv (zenodo.org)"
    )
    assert source_label("gs://bucket/path/to/news.csv") == "news.csv (gs://bucket)"
    assert source_label("file:///home/me/x.csv") == "x.csv"
    assert encoder_name(None) == "packaged all-MiniLM-L6-v2"
    assert encoder_name("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert encoder_name(str(tmp_path / "my-encoder")) == "my-encoder (local folder)"


def test_graphql_documents_match_dagsters_schema():
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema().graphql_schema
    for document in (OVERVIEW_QUERY, LAUNCH_MUTATION, CHECK_EXECUTIONS_QUERY):
        assert validate(schema, parse(document)) == []


def test_dagster_client_reports_unreachable_quickly_and_never_raises(port_finder):
    client = DagsterClient(f"http://127.0.0.1:{port_finder()}")
    started = time.monotonic()
    info = client.overview()
    assert time.monotonic() - started < 5
    assert not info.reachable and not info.ok and "not reachable" in info.error
    launch = client.launch_retrain()
    assert not launch.ok and "not reachable" in launch.message


def test_dagster_client_on_a_server_that_is_not_dagster(http_server):
    info = DagsterClient(http_server.base_url).overview()
    assert info.reachable and not info.ok and "answered HTTP 501" in info.error


def test_display_url_hides_credentials():
    assert display_url("http://admin:hunter2@dagster.internal:3000/") == "http://dagster.internal:3000/"


def test_dashboard_cli_runs_streamlit_headless_on_the_app(monkeypatch):
    import os
    import sys

    from fakenews_ml import cli

    launched = []
    monkeypatch.setattr(os, "execv", lambda path, argv: launched.append((path, argv)))
    assert cli.main(["dashboard", "--port", "8765", "--host", "0.0.0.0"]) == 0
    path, command = launched[0]
    assert path == sys.executable == command[0]
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(APP)
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags == {
        "--server.address": "0.0.0.0",
        "--server.port": "8765",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
    }
    assert cli.main(["dashboard", "--port", "70000"]) == cli.EXIT_USAGE and len(launched) == 1


def test_fakenews_ml_never_imports_streamlit_or_the_dashboard():
    import subprocess
    import sys

    code = (
        "import sys, fakenews_ml.cli as c; c.build_parser(); c.dashboard_app_path(); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'dashboards')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_runs_are_named_by_their_job_or_the_assets_they_materialized():
    from dashboards.run_names import job_label

    assert job_label("retrain", ("raw_news",)) == "retrain"
    assert job_label("__ASSET_JOB") == "asset materialization"
    assert job_label("__ASSET_JOB", ("raw_news", "validated_news")) == "asset materialization: raw_news, validated_news"
    many = [f"asset_{i}" for i in range(5)]
    assert job_label("__ASSET_JOB_0", many) == "asset materialization: asset_0, asset_1, asset_2 +2 more"


def test_run_links_use_the_address_a_browser_opens(monkeypatch):
    from dashboards.dagster_client import UI_URL_ENV, DagsterClient

    client = DagsterClient("http://webserver:3000/")
    monkeypatch.delenv(UI_URL_ENV, raising=False)
    assert client.run_url("abc") == "http://webserver:3000/runs/abc"
    monkeypatch.setenv(UI_URL_ENV, "https://user:secret@dagster.example.com/")
    assert client.run_url("abc") == "https://dagster.example.com/runs/abc"
