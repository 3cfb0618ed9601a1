"""Memory of one function instance after warm requests.

Each function is served alone by its own gunicorn (the gateway's flags: gthread, 1 worker, 16 threads) with
`functions_framework.create_app`, against the stack, and sent a few real requests: `chat_send` in a paired
session, `pairing_accept` of fresh offers, `on_notify` with Pub/Sub push envelopes for a registered device. Then
/proc is read: the worker's VmRSS and peak (VmHWM), the master's VmRSS, and the instance's proportional set size
(master + worker, shared pages split): what a container's memory limit would count.
Target (docs/targets.md): ≤ 200 MiB (fits the 256 MiB tier).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import requests

from bench import _stack
from bench._stack import FunctionInstance, pss_kib, status_kib, verdict
from emulators.simulator import App
from tests.support import world

TARGET_MIB = 200
WARM_REQUESTS = 5


@dataclass(frozen=True)
class Footprint:
    name: str
    requests: int
    worker_rss: float
    worker_peak: float
    master_rss: float
    instance_pss: float


def run() -> str:
    skipped = _stack.skip_without_gcloud()
    if skipped:
        return skipped
    _stack.stack()
    _stack.quiet_world()
    rows = [
        _measure("chat_send", "http", _chat_send_requests()),
        _measure("pairing_accept", "http", _pairing_accept_requests()),
        _measure("on_notify", "cloudevent", _on_notify_requests()),
    ]
    header = (
        f"{'function':<16} {'requests':>8} {'worker RSS':>11} {'worker peak':>12} {'master RSS':>11} "
        f"{'instance PSS':>13}"
    )
    lines = [
        f"one instance per function (gunicorn gthread, 1 worker, 16 threads), after {WARM_REQUESTS} real requests; MiB",
        header,
        "-" * len(header),
    ]
    for row in rows:
        lines.append(
            f"{row.name:<16} {row.requests:>8} {row.worker_rss:>11.1f} {row.worker_peak:>12.1f} "
            f"{row.master_rss:>11.1f} {row.instance_pss:>13.1f}  {verdict(row.instance_pss <= TARGET_MIB)}"
        )
    worst = max(rows, key=lambda row: row.instance_pss)
    lines.append(
        f"largest instance: {worst.name} {worst.instance_pss:.0f} MiB PSS (worker RSS {worst.worker_rss:.0f} MiB)  "
        f"(target ≤ {TARGET_MIB} MiB)  {verdict(worst.instance_pss <= TARGET_MIB)}"
    )
    return "\n".join(lines)


Requests = Callable[[FunctionInstance], int]


def _measure(target: str, signature: str, send: Requests) -> Footprint:
    with FunctionInstance(target, signature=signature) as instance:
        sent = send(instance)
        worker, master = instance.worker_pid, instance.master_pid
        return Footprint(
            name=target,
            requests=sent,
            worker_rss=status_kib(worker, "VmRSS") / 1024,
            worker_peak=status_kib(worker, "VmHWM") / 1024,
            master_rss=status_kib(master, "VmRSS") / 1024,
            instance_pss=(pss_kib(worker) + pss_kib(master)) / 1024,
        )


def _expect(response: requests.Response | object, what: str) -> None:
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    if status not in (200, 204):
        body = getattr(response, "text", None) or getattr(response, "body", None)
        raise RuntimeError(f"{what}: HTTP {status} {str(body)[:200]}")


def _chat_send_requests() -> Requests:
    pair = _stack.paired()

    def send(instance: FunctionInstance) -> int:
        app = App(instance.url, pair.client.session)
        for n in range(WARM_REQUESTS):
            body = {"session_id": pair.session_id, "client_message_id": str(uuid.uuid4()), "text": f"pesan {n}"}
            _expect(app.post("", body), "chat_send")
        return WARM_REQUESTS

    return send


def _pairing_accept_requests() -> Requests:
    db = _stack.halo_db()
    mitra = _stack.new_mitra()
    mitra_id = _stack.account_id(mitra)

    def send(instance: FunctionInstance) -> int:
        app = App(instance.url, mitra.session)
        try:
            for _ in range(WARM_REQUESTS):
                request_id = world.add_searching_request(db, world.add_client(db), [mitra_id])
                _expect(app.post("", {"request_id": request_id}), "pairing_accept")
                with db.transaction() as tx:  # below the mitra's capacity for the next one
                    tx.execute(
                        "UPDATE sessions SET status = 'closed' WHERE request_id = CAST(:r AS uuid)", {"r": request_id}
                    )
        finally:
            world.set_offline(db, [mitra_id])
        return WARM_REQUESTS

    return send


def _on_notify_requests() -> Requests:
    client = _stack.new_client()
    assert client.session is not None
    uid = client.session.uid
    token = f"bench-device-{uuid.uuid4().hex}"
    _expect(client.post("devices_register", {"token": token, "platform": "android"}), "devices_register")

    def send(instance: FunctionInstance) -> int:
        http = requests.Session()
        for n in range(WARM_REQUESTS):
            data = {
                "dedup_key": f"bench:{uuid.uuid4().hex}",
                "recipients": [uid],
                "data": {"type": "bench", "n": str(n)},
                "title": "Halo Bestie",
                "body": "Pesan baru",
            }
            envelope = {
                "message": {
                    "data": base64.b64encode(json.dumps(data).encode()).decode(),
                    "messageId": str(uuid.uuid4()),
                    "attributes": {},
                },
                "subscription": "projects/demo-halo/subscriptions/notify--on_notify",
            }
            _expect(
                http.post(f"{instance.url}/projects/demo-halo/topics/notify", json=envelope, timeout=30), "on_notify"
            )
        return WARM_REQUESTS

    return send


if __name__ == "__main__":
    print(run())
