"""Pub/Sub push with its token, and the local certificates: `python -m emulators.push_relay --port 8126 ...`.

In production Pub/Sub (through Eventarc) pushes every message with an OIDC token of the push account, which the
event functions verify (functions/_callers.py). The gcloud Pub/Sub emulator cannot sign its pushes, so the local
stack points every push subscription at this relay: a push to `/<function>/<rest>` is forwarded to
`<functions url>/<function>/<rest>` with `Authorization: Bearer <token>` (the push account, audience
`<functions url>/<function>`), signed with the stack's key (emulators/oidc_issuer.py), and the function's answer goes
back to the emulator as is (so a refusal is redelivered, as Pub/Sub would).

`GET /oauth2/v1/certs` serves that key's certificate in the shape of Google's, for the functions to verify against
(`HALO_OIDC_CERTS_URL`).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import requests

from emulators.oidc_issuer import LocalIssuer

log = logging.getLogger("push_relay")

CERTS_PATH = "/oauth2/v1/certs"
# A token is valid for an hour; a fresh one every 45 minutes leaves no push with one about to expire.
_TOKEN_REUSE_S = 45 * 60
# Hop-by-hop headers and what the relay sets itself.
_NOT_FORWARDED = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "authorization"}


class Relay:
    def __init__(
        self,
        issuer: LocalIssuer,
        functions_url: str,
        service_account: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._clock = clock
        self.functions_url = functions_url.rstrip("/")
        self.service_account = service_account
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def token_for(self, function: str) -> str:
        audience = f"{self.functions_url}/{function}"
        now = self._clock()
        with self._lock:
            # No made-at of 0 for "never": the monotonic clock counts from boot, so on a machine up for less than
            # _TOKEN_REUSE_S that would pass for a fresh token and every push went out with an empty bearer.
            known = self._tokens.get(audience)
            if known is not None and now - known[1] <= _TOKEN_REUSE_S:
                return known[0]
            token = self.issuer.token(email=self.service_account, audience=audience)
            self._tokens[audience] = (token, now)
            return token

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        function = path.lstrip("/").split("/", 1)[0]
        sent = {name: value for name, value in headers.items() if name.lower() not in _NOT_FORWARDED}
        sent["Authorization"] = f"Bearer {self.token_for(function)}"
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            answer = session.post(f"{self.functions_url}{path}", data=body, headers=sent, timeout=120)
        except requests.RequestException as exc:  # the gateway is down: Pub/Sub redelivers later
            return 503, f"relay: the functions are unreachable ({type(exc).__name__})".encode(), "text/plain"
        return answer.status_code, answer.content, answer.headers.get("Content-Type", "text/plain")


def serve(relay: Relay, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != CERTS_PATH:
                self._reply(404, b"not found", "text/plain")
                return
            self._reply(200, json.dumps(relay.issuer.certs()).encode(), "application/json", max_age=300)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer, kind = relay.forward(self.path, dict(self.headers.items()), body)
            self._reply(status, answer, kind)

        def _reply(self, status: int, body: bytes, kind: str, *, max_age: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if max_age is not None:
                self.send_header("Cache-Control", f"public, max-age={max_age}")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="push-relay", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.push_relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--functions-url", required=True)
    parser.add_argument("--oidc-key", type=Path, required=True)
    parser.add_argument("--service-account", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = serve(Relay(LocalIssuer(args.oidc_key), args.functions_url, args.service_account), args.host, args.port)
    log.info("relaying pushes on %s:%d to %s", args.host, args.port, args.functions_url)
    stopping.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
