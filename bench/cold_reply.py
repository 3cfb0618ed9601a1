"""Cold start as a person feels it: process start → the first 200 reply of a real request, against a floor.

`cold_start` times `import main`; a person waits for more than that: the SDK clients, the first PostgreSQL
connection, the Firestore channel and the token check all happen on the first request. Here each function is
started in a fresh gunicorn (the gateway's flags, from a copy compiled to bytecode as the buildpack deploys it) with
the stack already warm, and one real request is sent as soon as the port accepts a connection (it waits in the
listen backlog while the worker imports): the figure is process start → that request's 200.

The floor, started the same way and interleaved run by run: a minimal functions-framework function that imports the
same SDKs and makes the same first calls (one PostgreSQL query over a new connection, one Firestore write, one token
verification: a Firebase ID token for app-facing functions, a Google OIDC token for task and Pub/Sub handlers).
"The same SDKs" is recorded per function, not declared: before its timed runs, each function answers one real request
in a fresh instance wrapped to write down `sys.modules` after that reply; every recorded module of an SDK package
(`SDK_PACKAGES`: the Google Cloud client libraries, google.api_core/auth/oauth2, gRPC, firebase_admin, xendit, pg8000)
is imported by that function's floor, by its full name, before the floor serves. So the floor loads exactly the SDK
code the function's first request loaded, and only our own code (and the non-SDK libraries it uses, e.g. pydantic)
is what the ratio weighs. Target (docs/targets.md): at most 1.2 times the floor for every function.

The instance runs as deployed: its own packages imported from the copy's bytecode (not the working tree's sources,
which PYTHONDONTWRITEBYTECODE would have compiled again at every start), the first PostgreSQL connection and the early
clients warming beside the import, the collector paused until the first answer (shared/collector.py). The floor is
the plain function the issue describes, with none of these.

Where the difference comes from, printed beside it: our own import, timed in a fresh interpreter of the same copy
after functions-framework and the function's recorded SDK modules are loaded (`import main`, then the function
looked up, as the framework does; the collector paused, as on an instance), split into pydantic's own import
(`from pydantic import BaseModel`), the building of our pydantic model classes (the time inside pydantic's model
metaclass, timed in the probe alone) and the rest (our modules and the other libraries they import).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench import _stack
from bench.cold_start import deployed_copy, run_probe

RUNS = int(os.environ.get("HALO_BENCH_COLD_RUNS", "5"))  # three fresh instances moved the ratio by ±0.2
TARGET_RATIO = 1.2
# e.g. {"HALO_WARM_CLIENTS": "0"} to measure without the early clients (shared/bootstrap.py)
CODE_ENV = dict(item.split("=", 1) for item in os.environ.get("HALO_BENCH_COLD_ENV", "").split(",") if item)

# Top-level packages (and, under google.cloud, the client library) counted as SDKs in the recorded modules.
SDK_PACKAGES = (
    "google.cloud.",
    "google.pubsub_v1",
    "google.api_core",
    "google.auth",
    "google.oauth2",
    "grpc",
    "firebase_admin",
    "xendit",
    "pg8000",
)

_RECORDER = '''
"""The function itself, writing down the modules loaded once its first request has been answered."""
import functools, json, os, sys

import main


def __getattr__(name):
    function = getattr(main, name)

    @functools.wraps(function)
    def recorded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            with open(os.environ["HALO_BENCH_MODULES"], "w") as out:
                json.dump(sorted(sys.modules), out)

    return recorded
'''

_FLOOR = '''
"""The floor: the SDK modules this function's first request loaded, the same first calls, nothing of ours."""
import importlib, os, uuid

for _module in SDK_MODULES:  # recorded by bench/cold_reply.py (sorted: a package before its modules)
    try:
        importlib.import_module(_module)
    except ImportError:  # a name some SDK put in sys.modules under an alias; its code is loaded by its package
        pass

import pg8000.native
from google.cloud import firestore


def _first_calls(request, verify):
    env = os.environ.get
    connection = pg8000.native.Connection(
        user=env("HALO_DB_USER", "postgres"), password=env("HALO_DB_PASSWORD") or None,
        host=env("HALO_DB_HOST", "127.0.0.1"), port=int(env("HALO_DB_PORT", "5432")),
        database=env("HALO_DB_NAME", "halo"),
    )
    connection.run("SELECT 1")
    verify(request.headers["Authorization"].split(" ", 1)[1])
    client = firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-halo"))
    client.document(f"bench_floor/{uuid.uuid4().hex}").set({"at": firestore.SERVER_TIMESTAMP})
    return {"ok": True}


def floor_http(request):
    def verify(token):
        import firebase_admin
        from firebase_admin import auth as firebase_auth

        app = firebase_admin.initialize_app(options={"projectId": os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-halo")})
        firebase_auth.verify_id_token(token, app=app)
    return _first_calls(request, verify)


def floor_internal(request):
    def verify(token):
        from google.auth.transport import requests as google_requests
        from google.oauth2 import id_token
        id_token.verify_token(token, google_requests.Request(), audience=None,
                              certs_url=os.environ["HALO_OIDC_CERTS_URL"])
    return _first_calls(request, verify)
'''


@dataclass(frozen=True)
class Call:
    """One real request to a fresh instance: what to post, with which headers (made just before each start)."""

    body: bytes
    headers: dict[str, str]
    done: Callable[[], None] = lambda: None
    method: str = "POST"


@dataclass(frozen=True)
class Case:
    name: str
    signature: str
    floor: str
    prepare: Callable[[], Call]


# Our own import once the SDKs are loaded: pydantic's import, our model classes, the rest (a fresh interpreter).
_OWN_IMPORT = """
import importlib, json, sys, time
import functions_framework  # noqa: F401 (loaded before the function's code in an instance, and in the floor)
for module in {sdks!r}:
    try:
        importlib.import_module(module)
    except ImportError:
        pass  # as in the floor: a name some SDK put in sys.modules under an alias, loaded by its package
import gc
gc.disable()  # as on a deployed instance, where the collector is paused through the cold start (shared/collector.py)
started = time.perf_counter()
from pydantic import BaseModel  # noqa: F401
from pydantic._internal import _model_construction
pydantic_ms = (time.perf_counter() - started) * 1000
building = [0.0, 0, 0]  # seconds, classes, nesting
original = _model_construction.ModelMetaclass.__new__
def timed(mcs, *args, **kwargs):
    building[2] += 1
    begun = time.perf_counter()
    try:
        return original(mcs, *args, **kwargs)
    finally:
        building[2] -= 1
        building[1] += 1
        if building[2] == 0:
            building[0] += time.perf_counter() - begun
_model_construction.ModelMetaclass.__new__ = timed
started = time.perf_counter()
import main
getattr(main, {name!r})
rest_ms = (time.perf_counter() - started) * 1000
print(json.dumps({{"pydantic_ms": pydantic_ms, "models_ms": building[0] * 1000, "models": building[1],
                  "own_ms": pydantic_ms + rest_ms}}))
"""


@dataclass(frozen=True)
class OwnImport:
    own_ms: float
    pydantic_ms: float
    models_ms: float
    models: int

    @property
    def rest_ms(self) -> float:
        return self.own_ms - self.pydantic_ms - self.models_ms


def _own_import(case: Case, source: Path, sdks: list[str]) -> OwnImport:
    """The median of RUNS fresh interpreters: our import of the function once its SDK modules are loaded."""
    samples = [run_probe(_OWN_IMPORT.format(sdks=sdks, name=case.name), source) for _ in range(RUNS)]
    return OwnImport(
        own_ms=statistics.median(sample["own_ms"] for sample in samples),
        pydantic_ms=statistics.median(sample["pydantic_ms"] for sample in samples),
        models_ms=statistics.median(sample["models_ms"] for sample in samples),
        models=int(statistics.median(sample["models"] for sample in samples)),
    )


def _first_reply(target: str, source: Path, signature: str, call: Call, env: dict[str, str] | None = None) -> float:
    """Milliseconds from starting a fresh gunicorn to the 200 of its first request."""
    # As on Cloud Run, which sets K_SERVICE: the instance warms up beside its import (shared/bootstrap.py).
    _settle()
    instance = _stack.FunctionInstance(
        target, source=source, signature=signature, env={"HALO_WARM_UP": "1", **(env or {})}
    )
    started = time.perf_counter()
    instance.process.start()
    try:
        deadline = started + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", instance.port), timeout=0.05).close()
                break
            except OSError:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{target} never listened") from None
                time.sleep(0.002)
        reply = requests.request(
            call.method, f"{instance.url}/{target}", data=call.body or None, headers=call.headers, timeout=60
        )
        elapsed = (time.perf_counter() - started) * 1000
        if reply.status_code not in (200, 204):
            raise RuntimeError(f"{target}: HTTP {reply.status_code} {reply.text[:300]}")
        return elapsed
    finally:
        instance.stop()
        call.done()


def _settle() -> None:
    """Wait (up to 10 s) until the outbox is drained: the work a request made in preparing this one (a blast of
    offers, a session's projection) is not left running beside the instance being timed, nor beside its floor."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with _stack.halo_db().transaction() as tx:
            if not tx.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                return
        time.sleep(0.05)


def _bearer(token: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _cases() -> tuple[list[Case], dict[str, Callable[[], Call]]]:
    from emulators.seed import ADMIN_EMAIL, ADMIN_PASSWORD
    from emulators.simulator import App

    local = _stack.stack()
    _stack.quiet_world()
    pair = _stack.paired()
    assert pair.client.session is not None
    admin = App(local.functions_url, _stack.auth().sign_in_with_email(ADMIN_EMAIL, ADMIN_PASSWORD))
    assert admin.session is not None
    tier = _stack.add_tier(1800)

    def chat_send() -> Call:
        body = {"session_id": pair.session_id, "text": "halo", "client_message_id": uuid.uuid4().hex}
        return Call(_json(body), _bearer(pair.client.session.id_token))  # type: ignore[union-attr]

    def pairing_request() -> Call:
        client = _stack.new_client("Cold Request")
        assert client.session is not None

        def cancel() -> None:
            client.post("pairing_cancel", {})

        return Call(_json({"free_trial": True}), _bearer(client.session.id_token), cancel)

    def pairing_accept() -> Call:
        mitra = _stack.new_mitra("Mitra Cold")  # a free one each time: the last one's session is still closing
        assert mitra.session is not None
        client = _stack.new_client("Cold Accept")
        request = _stack.people.ok(client.post("pairing_request", {"free_trial": True}), "pairing_request")
        db = _stack.halo_db()
        deadline = time.monotonic() + 60
        while True:  # the blast's offer to the mitra, as its app would see it
            with db.transaction() as tx:
                offered = tx.scalar(
                    """SELECT count(*) FROM pairing_offers o JOIN mitras m ON m.id = o.mitra_id
                       WHERE o.request_id = CAST(:r AS uuid) AND o.status = 'offered' AND m.firebase_uid = :uid""",
                    {"r": request["request_id"], "uid": mitra.session.uid},
                )
            if offered:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no offer to the mitra for {request['request_id']}")
            time.sleep(0.05)

        def end() -> None:
            with db.transaction() as tx:
                session_id = tx.scalar(
                    "SELECT id::text FROM sessions WHERE request_id = CAST(:r AS uuid)", {"r": request["request_id"]}
                )
            if session_id is not None:
                _stack.people.ok(client.post("session_end", {"session_id": session_id}), "session_end")

        return Call(_json({"request_id": request["request_id"]}), _bearer(mitra.session.id_token), end)

    def billing_checkout() -> Call:
        client = _stack.new_client("Cold Checkout")
        assert client.session is not None
        headers = {**_bearer(client.session.id_token), "Idempotency-Key": uuid.uuid4().hex}
        return Call(_json({"tier_id": tier, "purpose": "session"}), headers)

    def admin_dashboard() -> Call:
        return Call(b"", _bearer(admin.session.id_token), method="GET")  # type: ignore[union-attr]

    def task_project_outbox() -> Call:
        with _stack.halo_db().transaction() as tx:
            outbox_id = tx.scalar("SELECT max(id) FROM outbox")
        token = local.caller_token("task_project_outbox")
        return Call(_json({"ids": [int(outbox_id)]}), _bearer(token))

    def outbox_sweep() -> Call:
        token = local.caller_token("outbox_sweep")
        message = {
            "message": {"data": base64.b64encode(b"{}").decode(), "messageId": uuid.uuid4().hex, "attributes": {}},
            "subscription": "projects/halo/subscriptions/outbox-sweep",
        }
        return Call(_json(message), _bearer(token))

    floor_call = {
        "floor_http": lambda: Call(b"{}", _bearer(pair.client.session.id_token)),  # type: ignore[union-attr]
        "floor_internal": lambda: Call(b"{}", _bearer(local.caller_token("outbox_sweep"))),
    }
    return [
        Case("chat_send", "http", "floor_http", chat_send),
        Case("pairing_request", "http", "floor_http", pairing_request),
        Case("pairing_accept", "http", "floor_http", pairing_accept),
        Case("billing_checkout", "http", "floor_http", billing_checkout),
        Case("admin_dashboard", "http", "floor_http", admin_dashboard),
        Case("task_project_outbox", "http", "floor_internal", task_project_outbox),
        Case("outbox_sweep", "cloudevent", "floor_internal", outbox_sweep),
    ], floor_call


def _recorded_sdks(case: Case, source: Path) -> list[str]:
    """The SDK modules loaded by the time the function answered its first request (one untimed run)."""
    record = source / f"modules_{case.name}.json"
    _first_reply(case.name, source / "recorded.py", case.signature, case.prepare(), {"HALO_BENCH_MODULES": str(record)})
    modules: list[str] = json.loads(record.read_text())
    return [name for name in modules if _is_sdk(name)]


def _is_sdk(module: str) -> bool:
    return any(module.startswith(package) or module == package.rstrip(".") for package in SDK_PACKAGES) and (
        module != "google.cloud"
    )


def _packages(modules: list[str]) -> list[str]:
    """The recorded SDK modules as their packages (google.cloud.<library>, else the top level), for the report."""
    packages = set()
    for module in modules:
        parts = module.split(".")
        packages.add(
            ".".join(parts[:3])
            if parts[:2] == ["google", "cloud"]
            else ".".join(parts[:2])
            if parts[0] == "google"
            else parts[0]
        )
    return sorted(packages)


@dataclass(frozen=True)
class Row:
    case: Case
    code_ms: float
    floor_ms: float
    sdks: list[str]
    own: OwnImport

    @property
    def ratio(self) -> float:
        return self.code_ms / self.floor_ms


def run() -> str:
    if (skipped := _stack.skip_without_gcloud()) is not None:
        return skipped
    cases, floor_call = _cases()
    only = os.environ.get("HALO_BENCH_COLD_ONLY")  # e.g. "chat_send,pairing_accept" while working on one
    if only:
        cases = [case for case in cases if case.name in only.split(",")]
    source = deployed_copy()
    (source / "recorded.py").write_text(_RECORDER)
    try:
        rows = []
        for case in cases:
            sdks = _recorded_sdks(case, source)
            floor_source = source / f"floor_{case.name}.py"
            floor_source.write_text(f"SDK_MODULES = {sdks!r}\n" + _FLOOR)
            code, floor = [], []
            for _ in range(RUNS):
                code.append(_first_reply(case.name, source / "main.py", case.signature, case.prepare(), CODE_ENV))
                floor.append(_first_reply(case.floor, floor_source, "http", floor_call[case.floor]()))
            own = _own_import(case, source, sdks)
            rows.append(Row(case, statistics.median(code), statistics.median(floor), _packages(sdks), own))
            print(f"   [cold_reply] {case.name}: {code} floor {floor}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(source, ignore_errors=True)
    header = f"{'function':<22} {'first 200 ms':>12} {'floor ms':>9} {'ratio':>6}  target"
    lines = [
        f"process start → first 200 reply of a real request, median of {RUNS} fresh gunicorn instances each "
        "(gthread, 1 worker), floor interleaved run by run; stack warm",
        "the function as deployed: its code from the copy's bytecode, PostgreSQL and its early clients warming beside "
        "the import, the collector paused until the first answer (shared/collector.py); the floor has none of these",
        "floor, per function: functions-framework, then every SDK module the function's own first request loaded "
        "(recorded from sys.modules after one untimed real request; packages listed below), then one PostgreSQL "
        "query on a new connection, one token verification (Firebase ID token, or Google OIDC for task/Pub/Sub), "
        "one Firestore write",
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        lines.append(
            f"{row.case.name:<22} {row.code_ms:>12.0f} {row.floor_ms:>9.0f} {row.ratio:>5.2f}x  "
            f"≤{TARGET_RATIO}x {_stack.verdict(row.ratio <= TARGET_RATIO)}"
        )
    lines += [
        "",
        f"our own import, functions-framework and the SDKs already loaded, the collector paused (median of {RUNS} "
        "fresh interpreters each), beside the difference (the floor's first calls are its own: a function whose first "
        "request makes fewer, e.g. no Firestore write, has a difference below its import):",
        f"{'function':<22} {'difference':>10} {'own import':>10} {'pydantic':>9} {'models':>13} {'the rest':>9}",
    ]
    for row in rows:
        own = row.own
        lines.append(
            f"{row.case.name:<22} {row.code_ms - row.floor_ms:>8.0f}ms {own.own_ms:>8.0f}ms {own.pydantic_ms:>7.0f}ms "
            f"{own.models_ms:>5.0f}ms ({own.models:>3}) {own.rest_ms:>7.0f}ms"
        )
    lines.append(
        "  difference: first 200 less the floor; pydantic: its own import; models: building our pydantic model "
        "classes (how many; pydantic code first loaded for them included); the rest: our modules and the other "
        "libraries they import"
    )
    lines.append("")
    lines.append("SDKs each floor imports (recorded):")
    for row in rows:
        lines.append(f"  {row.case.name}: {', '.join(row.sdks)}")
    worst = max(rows, key=lambda row: row.ratio)
    lines.append("")
    lines.append(
        f"worst: {worst.case.name} {worst.ratio:.2f}x the floor (target ≤ {TARGET_RATIO}x): "
        f"{_stack.verdict(all(row.ratio <= TARGET_RATIO for row in rows))}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
