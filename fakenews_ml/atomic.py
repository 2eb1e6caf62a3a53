"""Atomic writes, the one way the project replaces anything on disk.

Every write goes to a hidden temporary sibling (``.<name>.partial-<pid>-<random>``) in the target's folder and
is renamed into place in one step, so a reader sees the old content or the new, never half of either, and a
crash at any point leaves the old content. Three kinds:

- ``atomic_path`` / ``write_text`` / ``write_json``: one file;
- ``atomic_dir``: a folder built in a staging sibling, then renamed (or exchanged with an existing one);
- ``swap_symlink``: a link re-pointed (the production champion).

A killed writer leaves at most a hidden partial sibling, which no reader lists; the next folder or link write in
the same place removes it (``clean_partials``: only once its writer is gone).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

PARTIAL = ".partial-"
# A partial sibling whose writer may be on another machine (a shared volume) is only removed once this old.
STALE_PARTIAL_SECONDS = 24 * 3600


def _partial_prefix(target: Path) -> str:
    return f".{target.name}{PARTIAL}{os.getpid()}-"


def is_partial(path: Path) -> bool:
    """A hidden leftover of an unfinished atomic write (never a finished file or folder)."""
    return path.name.startswith(".") and PARTIAL in path.name


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix, so writers that add one are happy); when the
    block ends without an exception it replaces ``target`` in one rename. Readable by others (0644)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{_partial_prefix(target)}{secrets.token_hex(4)}{target.suffix}")
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: Path | str, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: Path | str, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, data) -> Path:
    """``data`` as indented, key-sorted JSON (anything not JSON-able must be converted by the caller)."""
    return write_text(target, json.dumps(data, indent=2, sort_keys=True))


ExistingDir = Literal["replace", "keep", "error"]


@contextlib.contextmanager
def atomic_dir(target: Path | str, existing: ExistingDir = "error") -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; when the block ends without an exception it becomes
    ``target``. If ``target`` exists by then: ``replace`` swaps it out in one step (readers see the old folder or
    the new one, never a gap, where the OS can exchange two paths), ``keep`` keeps it and drops the staging
    folder (content-addressed folders: same name, same content), ``error`` raises FileExistsError."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_partials(target.parent)  # what killed writers left here before
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=_partial_prefix(target)))
    staging.chmod(0o755)  # mkdtemp makes it private; artifacts are read by servers and other users
    try:
        yield staging
        if not target.exists():
            os.replace(staging, target)
        elif existing == "keep":
            return
        elif existing == "replace":
            _replace_dir(staging, target)
        else:
            raise FileExistsError(f"{target} already exists")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_dir(staging: Path, target: Path) -> None:
    if _exchange(staging, target):
        return  # staging now holds the old folder; the caller removes it
    retired = target.with_name(f"{_partial_prefix(target)}old")
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):  # kernel or filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_symlink(link: Path | str, target: Path | str) -> None:
    """Point ``link`` at ``target`` in one rename (a new link beside it replaces the old one)."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    clean_partials(link.parent)
    tmp = link.with_name(f"{_partial_prefix(link)}{secrets.token_hex(4)}")
    try:
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, link)
    finally:
        tmp.unlink(missing_ok=True)


def _writer_gone(path: Path) -> bool:
    """True when the partial's writer is no longer running: its pid (in the name) is dead on this machine, or
    the partial is older than any writer would take (it may come from another machine on a shared volume)."""
    try:
        age = time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    pid_text = path.name.split(PARTIAL, 1)[1].split("-", 1)[0]
    if age > STALE_PARTIAL_SECONDS or not pid_text.isdigit():
        return age > STALE_PARTIAL_SECONDS
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def clean_partials(folder: Path | str) -> list[Path]:
    """Remove the partial siblings in ``folder`` left by killed writers; returns what was removed."""
    folder = Path(folder)
    removed = []
    for path in folder.iterdir() if folder.is_dir() else []:
        if is_partial(path) and _writer_gone(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
