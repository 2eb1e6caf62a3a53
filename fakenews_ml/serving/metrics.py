"""Prometheus metrics of one API instance, in their own ``CollectorRegistry`` (two apps in one process,
as in tests, never share or clash)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Fine buckets around the latency targets (p50 <= 15 ms, p99 <= 50 ms).
LATENCY_BUCKETS = (0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "fakenews_http_requests", "HTTP requests by endpoint and status code", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "fakenews_http_request_duration_seconds",
            "Time to answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "fakenews_predictions", "Headlines classified, by predicted label", ["label"], registry=r
        )
        self.model = Info("fakenews_model", "The model being served", registry=r)
        self.reloads = Gauge("fakenews_model_loads", "Models loaded since start (1 + champion swaps)", registry=r)
        self.log_backlog = Gauge(
            "fakenews_prediction_log_backlog_rows", "Predictions not yet committed to the log", registry=r
        )
        self.log_written = Gauge(
            "fakenews_prediction_log_written_rows", "Predictions committed to the log since start", registry=r
        )
        self.uptime = Gauge("fakenews_uptime_seconds", "Seconds since the API started", registry=r)
        started = time.monotonic()
        self.uptime.set_function(lambda: time.monotonic() - started)
        for label in ("fake", "real"):  # present from the start, so rate() works on a fresh server
            self.predictions.labels(label=label)

    def count_labels(self, labels) -> None:
        fake = int(sum(labels))
        if fake:
            self.predictions.labels(label="fake").inc(fake)
        if len(labels) - fake:
            self.predictions.labels(label="real").inc(len(labels) - fake)


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body copy): counts every response, including the 413s that the
    body limit sends before routing, and times it. Unknown paths share one label to bound cardinality."""

    def __init__(self, app, metrics: ApiMetrics, known_paths: set[str]):
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 499  # nginx's "client closed the request": no answer was sent and nothing failed

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            status = 500
            raise
        finally:
            endpoint = scope["path"] if scope["path"] in self.known_paths else "other"
            self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
            self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)
