"""Browser safety: the API may run on a machine where someone also browses the web.

``RequestGuard`` checks every request before any endpoint runs (and after ``BodyLimitMiddleware`` has read
the body, so a refusal never breaks a client's upload):

- **Host** (every request): it must name a host the server is configured for (``ServeConfig.allowed_hosts``;
  by default the bind address, ``localhost``, ``127.0.0.1`` and ``[::1]``, each on the port the request
  came in on). A DNS-rebinding page names its own host, so it cannot read even ``/health``. 400 otherwise.
- **Origin** (POST): browsers send it on cross-site requests; when present it must name an allowed host
  (a ``null`` origin never does). 403 otherwise.
- **Token** (POST ``/feedback``): when ``FAKENEWS_API_TOKEN`` is set, ``Authorization: Bearer <token>`` is
  required, compared in constant time and never logged or echoed. 401 otherwise.
- **Content-Type** (POST): ``/predict`` and ``/feedback`` take ``application/json`` only; ``/predict/csv``
  takes ``multipart/form-data``, ``text/csv`` or ``application/csv``. A page may post ``text/plain`` or a
  form to any site without asking; it cannot send JSON or ``text/csv`` without a CORS preflight, which this
  API never grants. 415 otherwise.

Every refusal is a JSON ``{"detail": ...}`` naming the rule and the way to satisfy it.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fakenews_ml.serving.limits import send_error

JSON_TYPES = frozenset({"application/json"})
CSV_TYPES = frozenset({"multipart/form-data", "text/csv", "application/csv"})
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
ANY_HOST = "*"
_READ = frozenset({b"host", b"origin", b"content-type", b"authorization"})


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a Host header or an allowed-hosts entry (``name``, ``name:port``, ``[v6]:port``),
    lowercased, port None when absent; None when it is not a host."""
    value = value.strip().lower()
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or not host or (rest and not rest.startswith(":")):
            return None
        host, port = f"[{host}]", rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address (config entries only; a Host header brackets it)
        host, port = f"[{value}]", None
    else:
        host, _, port = value.partition(":")
        port = port if _ else None
    if not host or any(c in host for c in " /\\@?#\t") or (port is not None and not _valid_port(port)):
        return None
    return host, int(port) if port is not None else None


def _valid_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < int(text) < 65536


class HostRules:
    """Which ``(host, port)`` pairs a request may name. ``entries`` None means the defaults (the bind
    address and the loopback names, on the server's own port); an entry without a port allows any port;
    ``*`` allows every host (e.g. behind a reverse proxy that checks hosts itself)."""

    def __init__(self, entries: list[str] | None, bind_host: str):
        self.any = entries is not None and ANY_HOST in entries
        self.defaults = entries is None
        names = [bind_host, *LOCAL_NAMES] if entries is None else [e for e in entries if e != ANY_HOST]
        self.allowed = {parsed for parsed in map(parse_host, names) if parsed is not None}

    def allows(self, host: str, port: int | None, server_port: int | None) -> bool:
        if self.any:
            return True
        if self.defaults:
            return (host, None) in self.allowed and (server_port is None or port == server_port)
        return (host, port) in self.allowed or (host, None) in self.allowed

    def describe(self) -> str:
        if self.any:
            return "any host"
        names = sorted(host if port is None else f"{host}:{port}" for host, port in self.allowed)
        return ", ".join(names) + (" (on this server's port)" if self.defaults else "")


class RequestGuard:
    """Pure ASGI middleware applying the rules in the module docstring."""

    def __init__(
        self,
        app,
        rules: HostRules,
        token: str | None,
        json_paths: frozenset[str],
        csv_paths: frozenset[str],
        token_paths: frozenset[str],
    ):
        self.app = app
        self.rules = rules
        self._token = token.encode() if token else None
        self.json_paths, self.csv_paths, self.token_paths = json_paths, csv_paths, token_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is not None:
            status, message, headers = refusal
            return await send_error(send, status, message, headers)
        return await self.app(scope, receive, send)

    def refusal(self, scope) -> tuple[int, str, list] | None:
        """``(status, message, extra headers)`` for a request the rules refuse, else None."""
        headers, hosts = {}, 0
        for name, value in scope["headers"]:  # one pass; the server gives names in lower case
            if name in _READ:
                headers[name] = value.decode("latin-1")
                hosts += name == b"host"
        server_port = scope["server"][1] if scope.get("server") else None
        if hosts != 1:
            return 400, "the request needs exactly one Host header", []
        host_text = headers[b"host"]
        parsed = parse_host(host_text)
        if parsed is None or not self.rules.allows(*parsed, server_port):
            return (
                400,
                f"Host {host_text[:100]!r} is not a name this server answers to (allowed: {self.rules.describe()}); "
                "start the server with --allowed-hosts to add one",
                [],
            )
        if scope["method"] != "POST":
            return None
        origin = headers.get(b"origin")
        if origin is not None and not self._origin_allowed(origin, server_port):
            return 403, f"cross-site request refused: Origin {origin[:100]!r} is not an allowed host", []
        path = scope["path"]
        if self._token is not None and path in self.token_paths and not self._authorized(headers):
            return (
                401,
                f"POST {path} needs 'Authorization: Bearer <token>' with the token the server was given "
                "(FAKENEWS_API_TOKEN)",
                [(b"www-authenticate", b"Bearer")],
            )
        content_type = headers.get(b"content-type", "").split(";")[0].strip().lower()
        if path in self.json_paths and content_type not in JSON_TYPES:
            return 415, f"POST {path} expected Content-Type: application/json, got {content_type or 'none'!r}", []
        if path in self.csv_paths and content_type not in CSV_TYPES:
            return (
                415,
                f"POST {path} expected a multipart/form-data upload with a CSV file (or a text/csv body), "
                f"got {content_type or 'no content type'!r}",
                [],
            )
        return None

    def _origin_allowed(self, origin: str, server_port: int | None) -> bool:
        try:
            parts = urlsplit(origin.strip())
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            return False
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return self.rules.allows(host, port, server_port)

    def _authorized(self, headers: dict) -> bool:
        scheme, _, given = headers.get(b"authorization", "").strip().partition(" ")
        # compared even when the scheme is wrong: the time taken says nothing about the token
        match = hmac.compare_digest(given.strip().encode("latin-1"), self._token)
        return match and scheme.lower() == "bearer"
