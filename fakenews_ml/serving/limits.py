"""Request limits and input checks of the API. Each rejection is an ``ApiError`` whose message names the
problem and, for a limit, the limit, so that a client can fix its request.

Status codes: 413 for anything over a size limit (request body over ``max_upload_bytes``, more headlines
than ``max_batch``); 422 for content that cannot be used (not a list, a non-string headline, one that
``headlines.headline_problem`` refuses, a headline over ``max_title_chars``, a lone UTF-16 surrogate
anywhere in the JSON, a CSV without a ``title`` column, not UTF-8 or with a row that does not fit its
header); 400 for a body that is not JSON at all (or not UTF-8); 415 for an upload that is neither
multipart nor CSV. Cross-site and foreign-host requests are refused by ``guards.RequestGuard``.
"""

from __future__ import annotations

import json
import re

from fakenews_ml.config import ServeConfig
from fakenews_ml.headlines import headline_problem

_DRAIN_CAP = 64 * 1024 * 1024  # past this an oversized body is not read to its end: the connection closes


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(body: bytes):
    """The parsed body: UTF-8 JSON (RFC 8259) whose strings are all real text."""
    if not body.strip():
        raise ApiError(400, "empty request body: send JSON")
    try:
        # strict UTF-8: json.loads(bytes) would let encoded surrogates (b"\xed\xa0\x80") through
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            f"request body is not valid JSON: it is not UTF-8 text (byte {exc.start}: {body[exc.start : exc.start + 4]!r})",
        ) from None
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:  # JSONDecodeError, and integers past Python's 4300-digit conversion limit
        reason = "a number has more digits than any field takes" if "integer string conversion" in str(exc) else exc
        raise ApiError(400, f"request body is not valid JSON: {reason}") from None
    except RecursionError:  # e.g. [[[[...]]]] thousands deep: valid JSON, but not a request
        raise ApiError(400, "request body is JSON nested too deeply") from None
    # "\ud800" is valid JSON but no character: stopped here, it never reaches the model, the log or a reply
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        where = _lone_surrogate(value)
        if where is not None:
            raise ApiError(
                422, f"{where} contains a lone UTF-16 surrogate escape (e.g. \\ud800), which is not a character"
            )
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # made once: json.loads(..., **options) makes one per call


def _lone_surrogate(value) -> str | None:
    """Where in a parsed JSON value a string (or a key) holds a lone surrogate, or None. A loop, not
    recursion: the value may be nested as deep as the JSON parser allows."""
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path or "the body"
        elif isinstance(item, list):
            stack.extend((child, f"{path or 'the body'}[{i}]") for i, child in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            for key in item:
                if _SURROGATE.search(key):
                    return f"a key of {path or 'the body'}"
            stack.extend((child, f"{path}.{key}" if path else key) for key, child in reversed(item.items()))
    return None


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
        problem = headline_problem(title)
        if problem is not None:
            raise ApiError(422, f"{where(i)} {problem}")
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
        shown = repr(origin) if not isinstance(origin, str) or len(origin) <= 40 else repr(origin[:40]) + "..."
        raise ApiError(422, f'"origin" must be a short tag of letters, digits, - or _ (got {shown})')
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
                return await send_error(send, 400, "invalid Content-Length header")
            if declared_size > self.max_bytes:
                await _drain(receive)
                return await send_error(send, 413, self._message(declared_size))
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
                return await send_error(send, 413, self._message(size, streamed=True))
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


async def send_error(send, status: int, message: str, headers: list | None = None) -> None:
    """A JSON ``{"detail": message}`` response straight from ASGI middleware."""
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
