"""Request limits and input checks of the API. Each rejection is an ``ApiError`` whose message names the
problem and, for a limit, the limit, so that a client can fix its request.

Status codes: 413 for anything over a size limit (request body over ``max_upload_bytes``, more headlines
than ``max_batch``); 422 for content that cannot be used (not a list, a non-string or empty headline, a
headline over ``max_title_chars``, a CSV without a ``title`` column or not UTF-8); 400 for a body that is
not JSON at all; 415 for an upload that is neither multipart nor CSV.
"""

from __future__ import annotations

import json

from fakenews_ml.config import ServeConfig

_DRAIN_CAP = 64 * 1024 * 1024  # past this an oversized body is not read to its end: the connection closes


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(body: bytes):
    if not body.strip():
        raise ApiError(400, "empty request body: send JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # e.g. [[[[...]]]] thousands deep: valid JSON, but not a request
        raise ApiError(400, "request body is JSON nested too deeply") from None


def check_batch_size(n: int, config: ServeConfig, what: str = "headlines") -> None:
    if n == 0:
        raise ApiError(422, f"no {what} given")
    if n > config.max_batch:
        raise ApiError(
            413, f"{n} {what} in one request; the limit is {config.max_batch} (max_batch): split the request"
        )


def check_titles(titles, config: ServeConfig, where=lambda i: f"headline {i}") -> list[str]:
    """The headlines, stripped, or the first problem as an ApiError. ``where(i)`` names item ``i``."""
    if not isinstance(titles, list):
        raise ApiError(422, f'"titles" must be a list of strings, got {type(titles).__name__}')
    check_batch_size(len(titles), config)
    checked = []
    for i, title in enumerate(titles):
        if not isinstance(title, str):
            raise ApiError(422, f"{where(i)} is {_json_type(title)}, not a string")
        title = title.strip()
        if not title:
            raise ApiError(422, f"{where(i)} is empty")
        if len(title) > config.max_title_chars:
            raise ApiError(
                422,
                f"{where(i)} is {len(title)} characters long; the limit is {config.max_title_chars} (max_title_chars)",
            )
        checked.append(title)
    return checked


def check_origin(origin) -> str:
    """Who sent the traffic ('api', 'dashboard', 'simulator', ...): a short tag the drift report can split on."""
    if (
        not isinstance(origin, str)
        or not origin
        or len(origin) > 32
        or not origin.replace("-", "").replace("_", "").isalnum()
    ):
        raise ApiError(422, f'"origin" must be a short tag of letters, digits, - or _ (got {origin!r})')
    return origin


def _json_type(value) -> str:
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


class BodyLimitMiddleware:
    """Pure ASGI: reads a POST body up to ``max_bytes`` (declared or streamed), answers 413 past it.

    An oversized body is drained before answering: a server that replies mid-upload and closes the
    connection makes most clients report a broken pipe instead of the 413 and its message."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                return await _send_error(send, 400, "invalid Content-Length header")
            if declared_size > self.max_bytes:
                await _drain(receive)
                return await _send_error(send, 413, self._message(declared_size))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):  # past the last chunk, receive() would wait forever
                    await _drain(receive)
                return await _send_error(send, 413, self._message(size, streamed=True))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self, size: int, streamed: bool = False) -> str:
        if streamed:  # no Content-Length: we stopped keeping it once past the limit
            return f"request body is over the limit ({size} bytes read so far); the limit is {self.max_bytes} bytes (max_upload_bytes)"
        return f"request body is {size} bytes; the limit is {self.max_bytes} bytes (max_upload_bytes)"


async def _drain(receive) -> None:
    seen = 0
    while seen <= _DRAIN_CAP:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        seen += len(message.get("body", b""))


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
