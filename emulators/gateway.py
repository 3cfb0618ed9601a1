"""One WSGI app serving every function of main.py at /<function_name>, as Cloud Functions would one by one.

Each function gets its own functions-framework app (the same `create_app` a deployed instance runs), so a
request takes the exact production path. `/openapi.json` serves the generated API document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import functions_framework

from functions.manifest import FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _signature(trigger: str) -> str:
    return "cloudevent" if trigger == "pubsub" else "http"


class Gateway:
    def __init__(self) -> None:
        self.apps: dict[str, WsgiApp] = {
            spec.name: functions_framework.create_app(spec.name, str(ROOT / "main.py"), _signature(spec.trigger))
            for spec in FUNCTIONS
        }
        from functions.openapi import document

        self.openapi = json.dumps(document()).encode()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        name, _, rest = path.lstrip("/").partition("/")
        if name == "openapi.json":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [self.openapi]
        app = self.apps.get(name)
        if app is None:
            body = json.dumps({"error": {"code": "not_found", "message": f"no function named {name!r}"}}).encode()
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [body]
        # Mounting by hand (not DispatcherMiddleware) so the bare /<name> is served, not redirected with a 308.
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return app(environ, start_response)


app = Gateway()
