"""``fakenews models list/show/rollback``, ``fakenews predict`` on the champion, the Dagster rollback job, and a
rollback picked up by a running ``fakenews serve`` over real HTTP (no restart)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fakenews_ml.bundle import read_meta
from fakenews_ml.cli import main
from fakenews_ml.registry import champion_location, promote, promotion_history


@pytest.fixture
def two_champions(bundles, fakenews_home):
    """v1 promoted, then v2: v2 serves, v1 is the previous champion."""
    for name in ("v1", "v2"):
        shutil.copytree(bundles[name], fakenews_home / "models" / name)
    promote("models/v1", "first")
    promote("models/v2", "better")
    return {name: read_meta(fakenews_home / "models" / name)["version"] for name in ("v1", "v2")}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_list_marks_the_champion_and_shows_promotions(two_champions, capsys):
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_version = {b["version"]: b for b in listing["bundles"]}
    assert set(by_version) == set(two_champions.values())
    assert by_version[two_champions["v2"]]["champion"] and not by_version[two_champions["v1"]]["champion"]
    assert [p["reason"] for p in listing["promotions"]] == ["first", "better"]
    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    champion_line = next(line for line in text.splitlines() if two_champions["v2"] in line and "models/" in line)
    assert champion_line.startswith("*")


def test_show_takes_a_unique_prefix(two_champions, capsys):
    assert main(["models", "show", "v1"]) == 0  # the folder name
    detail = json.loads(capsys.readouterr().out)
    assert detail["version"] == two_champions["v1"] and detail["champion"] is False
    assert [p["reason"] for p in detail["promotions"]] == ["first"]
    version = two_champions["v2"]
    assert main(["models", "show", version[:-3]]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == version


@pytest.mark.parametrize("argv", [["models", "show", "nope"], ["models", "rollback", "nope"], ["models", "show", "2"]])
def test_bad_ids_are_one_line_and_exit_2(two_champions, argv, capsys):
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith("fakenews models: error: ") and ("no model bundle" in line or "matches 2 bundles" in line)
    assert champion_location() == "models/v2"  # nothing moved


def test_rollback_defaults_to_the_previous_champion_and_is_recorded(two_champions, capsys):
    assert main(["models", "rollback", "--reason", "v2 misbehaves"]) == 0
    assert two_champions["v1"] in capsys.readouterr().out
    assert champion_location() == "models/v1"
    last = promotion_history()[-1]
    assert last["location"] == "models/v1" and last["previous"] == "models/v2" and last["reason"] == "v2 misbehaves"
    assert main(["models", "rollback", "v1"]) == 2  # already the champion
    assert "champion already" in one_error_line(capsys)


def test_rollback_without_history_or_champion_is_one_line(bundles, fakenews_home, capsys):
    assert main(["models", "rollback"]) == 2
    assert "no model has been promoted" in one_error_line(capsys)
    shutil.copytree(bundles["v1"], fakenews_home / "models" / "v1")
    promote("models/v1", "only one")
    assert main(["models", "rollback"]) == 2
    assert "no previous champion" in one_error_line(capsys)


def test_predict_uses_the_champion_and_says_when_there_is_none(two_champions, bundles, capsys):
    assert main(["predict", "Senate passes the budget"]) == 0
    assert json.loads(capsys.readouterr().out)["model_version"] == two_champions["v2"]
    os.unlink(os.environ["FAKENEWS_HOME"] + "/production/champion")
    assert main(["predict", "Senate passes the budget"]) == 2
    assert "no production champion" in one_error_line(capsys)


def test_the_dagster_rollback_job_rolls_back(two_champions):
    import dagster as dg

    from fakenews_assets.definitions import build_definitions

    job = build_definitions().get_job_def("rollback_champion")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"rollback_champion_op": {"config": {"version": two_champions["v1"][:-2]}}}},
            instance=instance,
        )
        assert result.success
        assert champion_location() == "models/v1"
        observed = instance.fetch_observations(dg.AssetKey("production_model"), limit=1).records
        assert observed[0].asset_observation.metadata["champion_version"].value == two_champions["v1"]
        bad = job.execute_in_process(
            run_config={"ops": {"rollback_champion_op": {"config": {"version": "no-such"}}}},
            instance=instance,
            raise_on_error=False,
        )
        assert not bad.success and champion_location() == "models/v1"


def test_a_running_api_serves_the_rolled_back_model(two_champions, fakenews_home, tmp_path, port_finder, capsys):
    import httpx

    port = port_finder()
    out = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the server writes to it until it stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakenews_ml.cli", "serve", "--port", str(port), "--threads", "1", "--workers", "1"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "FAKENEWS_HOME": str(fakenews_home)},
    )
    base = f"http://127.0.0.1:{port}"

    def served_version(deadline_s: float, want: str) -> str | None:
        deadline, seen = time.monotonic() + deadline_s, None
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                seen = httpx.get(f"{base}/health", timeout=2, trust_env=False).json().get("model_version")
            if seen == want:
                return seen
            time.sleep(0.2)
        return seen

    try:
        assert served_version(90, two_champions["v2"]) == two_champions["v2"], (tmp_path / "serve.log").read_text()
        assert main(["models", "rollback"]) == 0
        assert served_version(30, two_champions["v1"]) == two_champions["v1"]
        answer = httpx.post(f"{base}/predict", json={"titles": ["Council approves budget"]}, trust_env=False)
        assert answer.json()["model_version"] == two_champions["v1"]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        out.close()
