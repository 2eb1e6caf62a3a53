"""Stopping what a test started: the whole process group of a server started with ``start_new_session=True``
(a code server's run workers, streamlit's children), by its PID, politely first."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen, grace_s: float = 20) -> None:
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
