"""The HTTP API: FastAPI over the production champion, with every prediction logged.

Endpoints (JSON errors are ``{"detail": "<what is wrong>"}``; limits and status codes in ``limits.py``):

- ``POST /predict``: ``{"titles": ["...", ...], "origin": "api"}`` (or a bare JSON list of titles) ->
  ``{"request_id", "model_version", "variant", "predictions": [{"title", "prob_fake", "label", "verdict",
  "model_version", "request_id", "ood_score", "out_of_domain"}, ...]}`` in input order. ``label`` 1 = fake;
  ``verdict`` 'fake'/'real'; ``out_of_domain`` true when the headline lies outside what the model was trained
  on (``ood_score`` above the bundle's threshold; both null for a bundle without a domain profile).
- ``POST /predict/csv``: a multipart upload (any field name; or a raw ``text/csv`` body) with a ``title``
  column -> the same CSV, every row in order, plus ``prob_fake`` and ``label``. ``?origin=`` tags the log rows.
- ``POST /feedback``: ``[{"title", "label", "prediction_id"?, "request_id"?, "source"?}, ...]`` (or
  ``{"feedback": [...]}``) -> ``{"stored": n, "feedback_ids": [...]}``; all rows or none.
- ``GET /health``: model version, variant, champion folder name (no absolute paths), uptime, limits, log
  state; 503 while no model is loaded. ``?flush=SECONDS`` first waits (at most that long) for queued log
  rows to be committed.
- ``GET /metrics``: Prometheus text.

Every refusal is a 4xx with a JSON message (``limits.py``: sizes and content; ``guards.py``: Host, Origin,
Content-Type and the optional ``FAKENEWS_API_TOKEN`` on /feedback). Rejected requests never reach the
model or the log. Headlines are checked (``headlines.headline_problem``) before they join a merged model
pass, and a pass that still fails is retried request by request (``batcher.py``), so one bad request
never fails another. A CSV upload is parsed in the threadpool, never on the event loop. The model runs in the threadpool, so the event loop
keeps accepting requests; log rows go to a background writer (``monitoring.log_writer``).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from fakenews_ml.config import PredictConfig, ServeConfig
from fakenews_ml.environment import api_token
from fakenews_ml.errors import BundleError, FakeNewsError, InputError, SchemaError
from fakenews_ml.monitoring.log_writer import BackgroundLogWriter
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.registry import champion_link, champion_location
from fakenews_ml.serving.batcher import BatchScores
from fakenews_ml.serving.guards import HostRules, RequestGuard
from fakenews_ml.serving.limits import (
    ApiError,
    BodyLimitMiddleware,
    check_batch_size,
    check_origin,
    check_titles,
    parse_json,
)
from fakenews_ml.serving.metrics import ApiMetrics, MetricsMiddleware
from fakenews_ml.serving.model_holder import ModelHolder, ServedModel
from fakenews_ml.tables import csv_line, parse_csv_bytes, require_titles, with_outputs

FEEDBACK_FIELDS = {"title", "label", "prediction_id", "request_id", "source"}
PATHS = {"/predict", "/predict/csv", "/feedback", "/health", "/metrics"}
JSON_PATHS = frozenset({"/predict", "/feedback"})
CSV_PATHS = frozenset({"/predict/csv"})
TOKEN_PATHS = frozenset({"/feedback"})
log = logging.getLogger(__name__)


def create_app(
    model: Path | str | None = None,
    log: PredictionLog | None = None,
    config: ServeConfig | None = None,
    variant: str = "auto",
) -> FastAPI:
    """An API serving ``model`` (a bundle folder; default the production link, which may not exist yet:
    the API then answers 503 until a champion is promoted) and logging to ``log`` (default the
    configured prediction log). ``variant='auto'`` serves the quantized variant the bundle recommends.

    An explicit ``model`` that cannot be loaded raises BundleError here rather than serving 503s."""
    config = config or ServeConfig()
    owns_log = log is None
    log = log or PredictionLog()
    source = Path(model) if model is not None else champion_link()
    # Merged passes may hold more headlines than one request may send.
    predict_config = PredictConfig(
        max_batch=max(config.max_batch, config.merge_rows),
        max_title_chars=config.max_title_chars,
        trace=config.trace_model,
    )
    holder = ModelHolder(
        source,
        predict_config,
        variant,
        config.reload_check_s,
        model_workers(config),
        config.merge_rows,
        sync=champion_location if model is None else None,
    )
    holder.refresh()
    if model is not None and holder.current is None:
        raise BundleError(holder.reload_error or f"{source} is not a model bundle")
    writer = BackgroundLogWriter(log, config.log_queue_rows, config.log_batch_rows)
    metrics = ApiMetrics()
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(_app):
        holder.start_watching()
        try:
            yield
        finally:
            holder.close()
            writer.close()  # flushes every queued row before the process exits
            if owns_log:
                log.close()

    app = FastAPI(title="fakenews", summary="Fake-news headline classifier", version="1", lifespan=lifespan)
    app.state.holder, app.state.writer, app.state.log, app.state.metrics = holder, writer, log, metrics

    @app.exception_handler(ApiError)
    async def _api_error(_request, exc: ApiError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(FakeNewsError)
    async def _input_error(_request, exc: FakeNewsError):
        # InputError / SchemaError: the request's content; anything else of ours is a server-side problem.
        status = 422 if isinstance(exc, (InputError, SchemaError)) else 500
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):
        # a bug of ours, never the client's input: logged in full, answered as JSON without internals
        log.error("unexpected %s while answering a request", type(exc).__name__, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    def served_model() -> ServedModel:
        served = holder.current
        if served is None:
            raise ApiError(503, f"no model to serve yet: no champion at {holder.source.name!r} (promote one)")
        return served

    def classify(served: ServedModel, titles: list[str], origin: str) -> tuple[str, BatchScores]:
        """Predict and queue the log rows (runs in the threadpool)."""
        scores = served.batcher.score(titles)
        probs, labels = scores.prob_fake, scores.label
        ood = scores.ood_score or [None] * len(titles)
        flags = scores.out_of_domain or [None] * len(titles)
        request_id, now = new_request_id(), datetime.now(UTC)
        writer.submit(
            [
                {
                    "request_id": request_id,
                    "created_at": now,
                    "title": t,
                    "prob_fake": p,
                    "label": y,
                    "model_version": served.version,
                    "origin": origin,
                    "ood_score": o,
                    "out_of_domain": f,
                }
                for t, p, y, o, f in zip(titles, probs, labels, ood, flags)
            ]
        )
        metrics.count_labels(labels)
        return request_id, scores

    @app.post(
        "/predict",
        openapi_extra=_json_body(
            {
                "type": "object",
                "required": ["titles"],
                "properties": {
                    "titles": {"type": "array", "items": {"type": "string"}, "maxItems": config.max_batch},
                    "origin": {"type": "string", "default": "api"},
                },
                "example": {"titles": ["Scientists discover water on Mars", "You won't believe this miracle cure"]},
            }
        ),
    )
    async def predict(request: Request):
        """Classify a JSON list of headlines."""
        body = parse_json(await request.body())
        origin = "api"
        if isinstance(body, dict):
            unknown = sorted(set(body) - {"titles", "origin"})
            if unknown:
                raise ApiError(422, f'unknown field(s) {unknown}: send {{"titles": ["headline", ...]}}')
            if "titles" not in body:
                raise ApiError(422, 'missing "titles": send {"titles": ["headline", ...]}')
            titles, origin = body["titles"], check_origin(body.get("origin", "api"))
        elif isinstance(body, list):
            titles = body
        else:
            raise ApiError(422, f'expected {{"titles": [...]}} or a JSON list of headlines, got {type(body).__name__}')
        titles = check_titles(titles, config)
        served = served_model()
        request_id, scores = await run_in_threadpool(classify, served, titles, origin)
        ood = scores.ood_score or [None] * len(titles)
        flags = scores.out_of_domain or [None] * len(titles)
        items = [
            {
                "title": t,
                "prob_fake": round(p, 6),
                "label": y,
                "verdict": "fake" if y else "real",
                "model_version": served.version,
                "request_id": request_id,
                "ood_score": round(o, 4) if o is not None else None,
                "out_of_domain": f,
            }
            for t, p, y, o, f in zip(titles, scores.prob_fake, scores.label, ood, flags)
        ]
        return JSONResponse(
            {
                "request_id": request_id,
                "model_version": served.version,
                "variant": served.variant,
                "predictions": items,
            },
            headers={"X-Request-ID": request_id},
        )

    @app.post(
        "/predict/csv",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                    },
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def predict_csv(request: Request, origin: str = "api"):
        """Classify an uploaded CSV with a ``title`` column; answers the CSV with prob_fake and label added."""
        origin = check_origin(origin)
        data, name = await _uploaded_csv(request)
        # a big or pathological file takes a while to parse: never on the event loop, which /health needs
        frame = await run_in_threadpool(lambda: require_titles(parse_csv_bytes(data, name), name))
        check_batch_size(len(frame), config, what="CSV rows")
        titles = check_titles(
            frame["title"].tolist(), config, where=lambda i: f"{name}: the title on CSV line {csv_line(frame, i)}"
        )
        served = served_model()
        request_id, scores = await run_in_threadpool(classify, served, titles, origin)
        outputs = {"prob_fake": [round(p, 6) for p in scores.prob_fake], "label": scores.label}
        if scores.ood_score is not None:
            outputs.update(ood_score=[round(o, 4) for o in scores.ood_score], out_of_domain=scores.out_of_domain)
        # as `fakenews predict` does: input columns named like an output column are kept, renamed
        frame = with_outputs(frame, outputs)
        headers = {
            "X-Request-ID": request_id,
            "X-Model-Version": served.version,
            "Content-Disposition": 'attachment; filename="predictions.csv"',
        }
        return Response(frame.to_csv(index=False), media_type="text/csv; charset=utf-8", headers=headers)

    @app.post(
        "/feedback",
        openapi_extra=_json_body(
            {
                "type": "array",
                "maxItems": config.max_batch,
                "items": {
                    "type": "object",
                    "required": ["label"],
                    "properties": {
                        "title": {"type": "string"},
                        "label": {"type": "integer", "enum": [0, 1]},
                        "prediction_id": {"type": "integer"},
                        "request_id": {"type": "string"},
                        "source": {"type": "string"},
                    },
                },
            }
        ),
    )
    async def post_feedback(request: Request):
        """Store labels people gave, linked to logged predictions by prediction_id or request_id."""
        body = parse_json(await request.body())
        items = body.get("feedback") if isinstance(body, dict) and set(body) == {"feedback"} else body
        if not isinstance(items, list):
            raise ApiError(422, 'expected a JSON list of {"title", "label", "request_id"?, "prediction_id"?} objects')
        check_batch_size(len(items), config, what="feedback rows")
        for i, item in enumerate(items):
            unknown = sorted(set(item) - FEEDBACK_FIELDS) if isinstance(item, dict) else []
            if unknown:
                raise ApiError(422, f"feedback row {i}: unknown field(s) {unknown}; allowed: {sorted(FEEDBACK_FIELDS)}")

        def store() -> list[int]:
            writer.flush(timeout=10)  # the predictions a label points at may still be queued
            return log.add_feedback(items, source="api")

        ids = await run_in_threadpool(store)
        return {"stored": len(ids), "feedback_ids": ids}

    @app.get("/health")
    async def health(flush: float = 0.0):
        """Liveness plus what is served; 503 while there is no model."""
        if flush > 0:
            await run_in_threadpool(writer.flush, min(flush, 60.0))
        served = holder.current
        body = {
            "status": "ok" if served else "no_model",
            "model_version": served.version if served else None,
            "variant": served.variant if served else None,
            "out_of_domain_threshold": served.predictor.domain_threshold if served else None,
            "champion": served.bundle_path.name if served else None,
            "model_source": holder.source.name,  # folder names only: /health is public
            "loaded_at": served.loaded_at.isoformat(timespec="seconds") if served else None,
            "model_loads": holder.reloads,
            "reload_error": holder.reload_error,
            "uptime_s": round(time.monotonic() - started, 1),
            "limits": {
                "max_batch": config.max_batch,
                "max_title_chars": config.max_title_chars,
                "max_upload_bytes": config.max_upload_bytes,
            },
            "log": {
                "written": writer.written,
                "backlog": writer.backlog,
                "dropped": writer.dropped,
                "error": writer.last_error,
            },
        }
        return JSONResponse(body, status_code=200 if served else 503)

    @app.get("/metrics")
    async def prometheus_metrics():
        served = holder.current
        metrics.model.info({"version": served.version if served else "", "variant": served.variant if served else ""})
        metrics.reloads.set(holder.reloads)
        metrics.log_backlog.set(writer.backlog)
        metrics.log_written.set(writer.written)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Outermost last: metrics see every response, including the body limit's 413s; the guard answers only
    # once the body limit has read the body, so its refusals never cut an upload short.
    app.add_middleware(
        RequestGuard,
        rules=HostRules(config.allowed_hosts, config.host),
        token=api_token(),
        json_paths=JSON_PATHS,
        csv_paths=CSV_PATHS,
        token_paths=TOKEN_PATHS,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=PATHS)
    return app


_request_ids = random.Random()  # seeded from the OS once


def new_request_id() -> str:
    """A random (version 4) UUID. Not ``uuid.uuid4()``: its os.urandom call releases the GIL, and under
    load every request then waits for the model threads to hand it back (a few ms at the median)."""
    return str(uuid.UUID(int=_request_ids.getrandbits(128), version=4))


def _json_body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def model_workers(config: ServeConfig) -> int:
    """Parallel model passes: one per ``torch_threads`` usable cores, at most 8."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return config.workers or max(1, min(8, cores // (config.torch_threads or cores)))


async def _uploaded_csv(request: Request) -> tuple[bytes, str]:
    """The uploaded CSV's bytes and a name for messages: the one file of a multipart form, or a raw CSV body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return await request.body(), "uploaded CSV"
    if content_type != "multipart/form-data":
        raise ApiError(
            415,
            f"expected a multipart/form-data upload with a CSV file (or a text/csv body), got {content_type or 'no content type'!r}",
        )
    async with request.form() as form:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise ApiError(
                422, "no file in the upload: send the CSV as a multipart file field (e.g. -F file=@news.csv)"
            )
        if len(files) > 1:  # reading only one would silently drop the others' rows
            raise ApiError(422, f"{len(files)} files in the upload: send one CSV file per request")
        return await files[0].read(), files[0].filename or "uploaded CSV"
