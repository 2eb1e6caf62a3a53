"""What the API's input and browser-safety checks cost per request, in microseconds (no model needed).

    python bench/request_checks.py [--repeats 5] [--number 100000]

Times, on one typical ``POST /predict`` with one headline: the guard (Host, Origin, Content-Type, token),
parsing the JSON body (strict UTF-8, surrogate scan) against a bare ``json.loads``, the headline rule
applied by the API and again by the predictor, and the predictor's finite-output check. Each is the best
of ``--repeats`` runs of ``--number`` calls. Compare the sum with the request's latency (about a
millisecond for one headline, ``bench/api_latency.py``).
"""

from __future__ import annotations

import argparse
import json
import timeit

import numpy as np

from fakenews_ml.config import PredictConfig, ServeConfig
from fakenews_ml.predict import check_titles as predictor_check_titles
from fakenews_ml.serving.guards import HostRules, RequestGuard
from fakenews_ml.serving.limits import check_titles, parse_json

HEADLINE = "Senate passes the annual budget after a late-night vote"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args()

    guard = RequestGuard(
        None,
        HostRules(None, "127.0.0.1"),
        token=None,
        json_paths=frozenset({"/predict", "/feedback"}),
        csv_paths=frozenset({"/predict/csv"}),
        token_paths=frozenset({"/feedback"}),
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"connection", b"keep-alive"),
            (b"accept", b"*/*"),
            (b"user-agent", b"python-httpx/0.28"),
            (b"content-length", b"70"),
            (b"content-type", b"application/json"),
        ],
    }
    assert guard.refusal(scope) is None
    body = json.dumps({"titles": [HEADLINE]}).encode()
    serve, predict = ServeConfig(), PredictConfig()
    probs = np.array([0.3], dtype=np.float32)
    cases = {
        "guard (Host, Origin, Content-Type)": lambda: guard.refusal(scope),
        "parse_json (strict)": lambda: parse_json(body),
        "json.loads (baseline)": lambda: json.loads(body),
        "API check_titles": lambda: check_titles([HEADLINE], serve),
        "predictor check_titles": lambda: predictor_check_titles([HEADLINE], predict),
        "finite-output check": lambda: np.isfinite(probs).all(),
    }
    result = {
        name: round(min(timeit.repeat(call, number=args.number, repeat=args.repeats)) / args.number * 1e6, 2)
        for name, call in cases.items()
    }
    added = sum(v for k, v in result.items() if k not in ("json.loads (baseline)", "parse_json (strict)"))
    # an upper bound of what the hardening added: both title checks existed before, minus the headline rule
    result["all checks but JSON parsing (upper bound of the added cost)"] = round(added, 2)
    print(json.dumps({"microseconds": result}, indent=2))


if __name__ == "__main__":
    main()
