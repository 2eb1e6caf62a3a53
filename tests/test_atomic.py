"""The one atomic-write helper: for each kind (file, folder, link), a crash mid-write leaves the old content,
and a killed writer's leftovers are hidden and cleaned up by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fakenews_ml import atomic
from fakenews_ml.atomic import atomic_dir, atomic_path, clean_partials, is_partial, swap_symlink, write_json, write_text


@pytest.fixture
def work(tmp_path):
    """An empty folder of the test's own (tmp_path also holds the autouse FAKENEWS_HOME)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if not is_partial(p))


# ----- one file -------------------------------------------------------------------------------------------


def test_a_file_is_replaced_whole(work):
    target = write_text(work / "report.json", "old")
    write_json(target, {"new": 1})
    assert target.read_text() == '{\n  "new": 1\n}' and os.stat(target).st_mode & 0o777 == 0o644
    assert _visible(work) == ["report.json"] and list(work.iterdir()) == [target]


def test_a_crash_mid_file_keeps_the_old_content(work):
    target = write_text(work / "report.json", "old")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_text("half of the ne")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and list(work.iterdir()) == [target]


def test_the_temporary_file_keeps_the_suffix(work):
    import numpy as np

    with atomic_path(work / "tokens.npz") as tmp:
        np.savez(tmp, a=np.arange(3))  # numpy adds .npz unless the name has it: the file must land in place
    assert np.load(work / "tokens.npz")["a"].tolist() == [0, 1, 2]


# ----- one folder -----------------------------------------------------------------------------------------


def _folder(path, content):
    path.mkdir(parents=True, exist_ok=True)
    (path / "weights").write_text(content)
    return path


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_folder_is_replaced_whole(work, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = _folder(work / "bundle", "old")
    (target / "stale").write_text("only in the old one")
    with atomic_dir(target, existing="replace") as staging:
        _folder(staging, "new")
    assert (target / "weights").read_text() == "new" and not (target / "stale").exists()
    assert list(work.iterdir()) == [target]


def test_a_crash_mid_folder_keeps_the_old_one(work):
    target = _folder(work / "bundle", "old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target, existing="replace") as staging:
        (staging / "weights").write_text("half")
        raise KeyboardInterrupt
    assert (target / "weights").read_text() == "old" and list(work.iterdir()) == [target]


def test_existing_folders_are_kept_or_refused_as_asked(work):
    target = _folder(work / "artifact", "first")
    with atomic_dir(target, existing="keep") as staging:
        _folder(staging, "second")
    assert (target / "weights").read_text() == "first"
    with pytest.raises(FileExistsError), atomic_dir(target) as staging:
        _folder(staging, "third")
    assert (target / "weights").read_text() == "first" and list(work.iterdir()) == [target]


# ----- the champion link ----------------------------------------------------------------------------------


def test_a_link_is_swapped_in_one_step_and_a_failed_swap_keeps_the_old_target(work, monkeypatch):
    old, new = _folder(work / "v1", "1"), _folder(work / "v2", "2")
    link = work / "production" / "champion"
    swap_symlink(link, "../v1")
    assert (link / "weights").read_text() == "1" and os.readlink(link) == "../v1"

    def fail(*args):
        raise OSError("disk gone (simulated)")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="simulated"):
        swap_symlink(link, "../v2")
    monkeypatch.undo()
    assert os.readlink(link) == "../v1" and _visible(link.parent) == ["champion"] == sorted(os.listdir(link.parent))
    swap_symlink(link, "../v2")
    assert (link / "weights").read_text() == "2" and old.exists() and new.exists()


# ----- killed writers -------------------------------------------------------------------------------------

KILLED_WRITER = """
import os, sys
from pathlib import Path
from fakenews_ml.atomic import atomic_dir, atomic_path
kind, target = sys.argv[1], Path(sys.argv[2])
if kind == "file":
    with atomic_path(target) as tmp:
        tmp.write_text("half")
        os._exit(9)  # killed mid-write: no cleanup runs
with atomic_dir(target, existing="replace") as staging:
    (staging / "weights").write_text("half")
    os._exit(9)
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_killed_writer_leaves_the_old_content_and_a_hidden_leftover_the_next_run_removes(work, kind):
    target = write_text(work / "report.json", "old") if kind == "file" else _folder(work / "bundle", "old")
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, kind, str(target)], capture_output=True, timeout=60)
    assert done.returncode == 9
    old = target.read_text() if kind == "file" else (target / "weights").read_text()
    assert old == "old"
    leftovers = [p for p in work.iterdir() if is_partial(p)]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{target.name}.partial-")
    assert _visible(work) == [target.name]  # hidden: no reader lists it

    assert clean_partials(work) == leftovers  # its writer is gone
    assert sorted(os.listdir(work)) == [target.name]


def test_a_live_writers_partial_is_left_alone(work):
    with atomic_dir(work / "bundle") as staging:
        (staging / "weights").write_text("in progress")
        assert clean_partials(work) == [] and staging.exists()  # this process is alive
    stale = work / ".old.partial-999999999-ab12"  # a pid that cannot be running
    stale.write_text("x")
    aged = work / ".other.partial-1-cd34"  # pid 1 is alive, but the leftover is days old
    aged.write_text("x")
    past = time.time() - 3 * 24 * 3600
    os.utime(aged, (past, past))
    assert sorted(p.name for p in clean_partials(work)) == sorted([aged.name, stale.name])
