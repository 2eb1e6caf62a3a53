"""The body limit at the ASGI level, where chunk boundaries can be chosen exactly (over real HTTP they
depend on how fast the server reads, so the API tests cannot pin them)."""

from __future__ import annotations

import asyncio
import json

import pytest

from fakenews_ml.serving.limits import BodyLimitMiddleware

SCOPE = {"type": "http", "method": "POST", "path": "/predict", "headers": []}  # streamed: no Content-Length


def _call(chunks: list[tuple[bytes, bool]], limit: int = 4096) -> tuple[list[dict], int, bool]:
    """Runs the middleware on ``(body, more_body)`` messages; receive() then blocks as a live connection
    would. Returns what was sent, how many messages were read and whether the app was reached."""
    reached, sent, queue = [], [], list(chunks)

    async def app(scope, receive, send):
        reached.append(True)

    async def receive():
        if queue:
            body, more = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": more}
        await asyncio.Event().wait()  # nothing more will come until the client gives up

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(BodyLimitMiddleware(app, limit)(SCOPE, receive, send), timeout=5))
    return sent, len(chunks) - len(queue), bool(reached)


@pytest.mark.parametrize(
    "chunks",
    [
        [(b"x" * 3000, True), (b"x" * 2000, False)],  # the limit is crossed by the last chunk
        [(b"x" * 5000, False)],  # the whole body in one message
        [(b"x" * 3000, True), (b"x" * 2000, True), (b"x" * 2000, False)],  # crossed mid-stream: drained to the end
    ],
)
def test_a_streamed_body_over_the_limit_gets_413_without_waiting_for_more(chunks):
    sent, read, reached = _call(chunks)
    assert sent[0]["status"] == 413 and not reached
    assert "the limit is 4096 bytes" in json.loads(sent[1]["body"])["detail"]
    assert read == len(chunks)


def test_a_streamed_body_within_the_limit_reaches_the_app():
    sent, read, reached = _call([(b"x" * 2000, True), (b"x" * 2000, False)])
    assert reached and not sent and read == 2
