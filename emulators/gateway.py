"""One WSGI app serving every function of main.py at /<function_name>, as Cloud Functions would one by one.

Each function gets its own functions-framework app (the same `create_app` a deployed instance runs), so a
request takes the exact production path. `/openapi.json` serves the generated API document, `/docs` a browsable
reference of it (kit/docs.py), `/contract/...` the JSON Schemas under contract/, and `/_kit/` a small page that signs
an admin in and shows the dashboard (kit/page). CORS for the origins `HALO_CORS_ORIGINS` names (emulators/cors.py).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import functions_framework

from emulators.cors import Cors, configured_origins
from functions.manifest import FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
KIT_PAGE = ROOT / "kit" / "page"
# The paths the gateway serves itself; no function may take one of these names.
RESERVED = frozenset({"openapi.json", "docs", "contract", "_kit"})
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _signature(trigger: str) -> str:
    return "cloudevent" if trigger == "pubsub" else "http"


class Gateway:
    def __init__(self, *, contract_dir: Path | None = None) -> None:
        from kit import docs

        self.contract_dir = contract_dir or docs.CONTRACT
        clashing = RESERVED & {spec.name for spec in FUNCTIONS}
        assert not clashing, f"functions named like the gateway's own paths: {sorted(clashing)}"
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
        if name in RESERVED:
            return self._own(name, rest, start_response)
        app = self.apps.get(name)
        if app is None:
            return _not_found(start_response, f"no function named {name!r}")
        # Mounting by hand (not DispatcherMiddleware) so the bare /<name> is served, not redirected with a 308.
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return app(environ, start_response)

    def _own(self, name: str, rest: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if name == "docs" and rest in ("", "index.html"):
            return self._docs(start_response)
        if name == "contract" and rest == "":
            from kit.docs import contract_files

            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"files": [f"/contract/{path}" for path in contract_files(self.contract_dir)]}).encode()]
        if name == "contract":
            return _static(self.contract_dir, rest, start_response)
        if name == "_kit":
            return _static(KIT_PAGE, rest or "index.html", start_response)
        return _not_found(start_response, f"nothing at /{name}/{rest}")

    def _docs(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        from kit import docs

        try:
            built = docs.page(json.loads(self.openapi), contract_dir=self.contract_dir)
        except docs.DocsUnavailable as exc:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"/docs cannot be built here: {exc}".encode()]
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [built.read_bytes()]


def _static(base: Path, relative: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A file under `base` (nothing outside it: `..` and links out are refused as not found)."""
    root = base.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return _not_found(start_response, f"no file {relative!r}")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/json", "application/javascript"):
        kind += "; charset=utf-8"
    start_response("200 OK", [("Content-Type", kind), ("Cache-Control", "no-cache")])
    return [path.read_bytes()]


def _not_found(start_response: Callable[..., Any], message: str) -> Iterable[bytes]:
    body = json.dumps({"error": {"code": "not_found", "message": message}}).encode()
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [body]


app = Cors(Gateway(), configured_origins())
