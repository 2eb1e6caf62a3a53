"""API latency under concurrent load, and no lost prediction-log rows.

    FAKENEWS_HOME=... python bench/api_latency.py [--model DIR] [--clients 8] [--seconds 30] [--client wrk|python] [--repeats N]

Starts `fakenews serve` on 127.0.0.1 (the champion under FAKENEWS_HOME unless --model), warms it up, then
``--clients`` closed-loop clients each send one held-out FakeNewsNet headline per request, back to back.
The default client is `wrk` (C, light enough not to steal the server's cores; Debian package `wrk`);
`--client python` uses our own simulator's thread pool instead (heavier: it shares the same cores). After
the load every answered request must be a row in the prediction log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import heldout_headlines, machine, markdown_table  # noqa: E402

from fakenews_ml.monitoring.prediction_log import PredictionLog  # noqa: E402
from fakenews_ml.serving.simulator import HttpTarget, simulate  # noqa: E402

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_predict.lua"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path | None, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "fakenews_ml.cli", "serve", "--port", str(port), *extra]
    if model is not None:
        command += ["--model", str(model)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except requests.RequestException:
            pass
        if server.poll() is not None:
            raise SystemExit(f"`{' '.join(command)}` exited with {server.returncode}")
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("the API did not become healthy in 120 s")


def run_wrk(url: str, titles: list[str], clients: int, seconds: float) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --client python")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as bodies:
        bodies.writelines(json.dumps({"titles": [t], "origin": "bench"}) + "\n" for t in titles)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(clients, 2)}",
                f"-c{clients}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(WRK_SCRIPT),
                url,
            ],
            env={**os.environ, "WRK_BODIES": bodies.name},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(bodies.name)
    summary = json.loads(re.search(r"WRK_JSON (\{.*\})", out).group(1))
    summary["ok"] = summary["requests"] - summary["non_2xx"]
    summary["requests_per_s"] = round(summary["requests"] / summary["seconds"], 1)
    return summary


def run_python(url: str, titles: list[str], clients: int, seconds: float) -> dict:
    import pandas as pd

    target = HttpTarget(url)
    try:
        n = int(seconds * 150)  # about the rate the threads reach; only sets how long the run lasts
        result = simulate(pd.DataFrame({"title": titles}), n, target, concurrency=clients, seed=2)
    finally:
        target.close()
    latency = result["latency_ms"]
    return {
        "requests": result["sent"],
        "ok": result["ok"],
        "requests_per_s": result["requests_per_s"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
    }


def measure(url: str, titles: list[str], clients: int, seconds: float, client: str) -> dict:
    run = run_wrk if client == "wrk" else run_python
    run(url, titles, clients, min(5.0, seconds))  # warm-up: first passes of each shape, allocator, threads
    requests.get(f"{url}/health", params={"flush": 30}, timeout=60)
    log = PredictionLog()
    before = log.count()
    summary = run(url, titles, clients, seconds)
    requests.get(f"{url}/health", params={"flush": 30}, timeout=60)
    summary["logged_rows"] = log.count() - before
    # wrk stops counting at the deadline while up to `clients` requests are still answered (and logged)
    summary["lost_rows"] = max(0, summary["ok"] - summary["logged_rows"])
    summary["answered_after_deadline"] = max(0, summary["logged_rows"] - summary["ok"])
    log.close()
    return {"client": client, "clients": clients, **summary}


def api_latency(
    model: Path | None = None,
    clients: int = 8,
    seconds: float = 30,
    client: str = "wrk",
    serve_args: list[str] | None = None,
    repeats: int = 1,
) -> list[dict]:
    """One result per repeat, each against a freshly started server (run-to-run spread is part of the answer)."""
    titles = heldout_headlines(2000)["title"].astype(str).tolist()
    results = []
    for _ in range(repeats):
        server, url = start_server(model, serve_args or [])
        try:
            results.append(measure(url, titles, clients, seconds, client))
        finally:
            server.terminate()
            server.wait(timeout=60)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="bundle to serve (default: the champion under FAKENEWS_HOME)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk")
    parser.add_argument("--repeats", type=int, default=1, help="runs, each against a fresh server")
    parser.add_argument("--serve-args", default="", help="extra `fakenews serve` options, e.g. '--workers 2'")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = api_latency(args.model, args.clients, args.seconds, args.client, args.serve_args.split(), args.repeats)
    print(f"{machine()}\n")
    keys = ("client", "clients", "requests", "requests_per_s", "p50_ms", "p99_ms", "lost_rows")
    print(markdown_table([{"run": i + 1, **{k: result[k] for k in keys}} for i, result in enumerate(results)]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": results, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
