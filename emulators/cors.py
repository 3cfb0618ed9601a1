"""CORS for the local gateway, so a web app on a dev server (the control center, a Flutter web build) can call the
functions from the browser.

Origins come from `HALO_CORS_ORIGINS`, comma-separated (`*` allows any origin; empty turns CORS off); by default the
usual dev servers on localhost. A preflight (OPTIONS with `Access-Control-Request-Method`) from an allowed origin is
answered here, without reaching a function; an actual request from one gets `Access-Control-Allow-Origin` (its own
origin, never `*`) and may read `Retry-After`. A disallowed origin gets no CORS header at all, so the browser keeps
the reply from the page; its preflight is a 403.

Production has no CORS: the control center is served from the same origin as its proxy (docs/control-center.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

DEFAULT_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
    "http://localhost:8080",
)
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
# What a page may read of a reply beyond the CORS-safelisted headers: how long a 429 or 503 asks it to wait.
EXPOSE_HEADERS = "Retry-After"
MAX_AGE_S = 600

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def configured_origins(environ: dict[str, str] | None = None) -> frozenset[str]:
    """`HALO_CORS_ORIGINS` (comma-separated), or the dev servers' defaults when it is not set."""
    value = (os.environ if environ is None else environ).get("HALO_CORS_ORIGINS")
    origins = DEFAULT_ORIGINS if value is None else value.split(",")
    return frozenset(_normal(origin) for origin in origins if origin.strip())


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class Cors:
    def __init__(self, app: WsgiApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(_normal(origin) for origin in origins)

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.origins or _normal(origin or "") in self.origins)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if origin is None or not self.origins:
            return self.app(environ, start_response)
        allowed = self.allows(origin)
        if environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            return self._preflight(origin, allowed, start_response)

        def with_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [*headers, ("Vary", "Origin")]
            if allowed:
                headers += [("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, with_cors)

    @staticmethod
    def _preflight(origin: str, allowed: bool, start_response: Callable[..., Any]) -> Iterable[bytes]:
        vary = ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        if not allowed:
            start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", "0"), vary])
            return [b""]
        start_response("204 No Content", [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", ALLOW_METHODS),
            ("Access-Control-Allow-Headers", ALLOW_HEADERS),
            ("Access-Control-Max-Age", str(MAX_AGE_S)),
            ("Content-Length", "0"),
            vary,
        ])  # fmt: skip
        return [b""]
