"""Presence at scale: what 5,000 online mitras heartbeating cost in CPU (issue 26; docs/targets.md: ≤ 5 % of one core).

`mitra_heartbeat` is served by its own gunicorn (the gateway's flags: gthread, 1 worker, 16 threads) on the real
stack: a real Firebase ID token checked by the Auth emulator's rules, one guarded UPDATE on PostgreSQL
(`heartbeat_if_online`), the reply. A few online mitras take turns sending N heartbeats through four callers (as
many apps at once); the instance's process CPU time (user + system of the master and its worker, from /proc) over
those N is the CPU per heartbeat. The PostgreSQL server's CPU over the same window (every backend, so background work
such as the stack's sweeps is included: an upper bound) is shown beside it.

The heartbeat interval is the one the backend gives 5,000 online mitras (each reply's `next_heartbeat_s`, the rule
shared.domain.presence.pace on the settings read from the database, as the control center set them): a third of
`heartbeat_grace_s` while the fleet stays within `heartbeats_per_s_max`, longer beyond it (docs/contract.md
"Presence"). Load: 5,000 / interval heartbeats a second; as a share of one core: that rate x CPU seconds per
heartbeat. Beside it, the same at the unpaced interval (a third of the grace), and how late a vanished mitra is
noticed at that pace (its lease).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench import _stack
from shared.domain.config import AppConfig
from shared.domain.presence import pace

ROOT = Path(__file__).resolve().parents[1]
MITRAS = 5_000
TARGET_SHARE = 0.05  # of one core
SENDERS = 8  # online mitras taking turns
CALLERS = 4  # heartbeats in flight at once
WARM_UP = 50
HEARTBEATS = 1_000


def _configured() -> AppConfig:
    with _stack.service_ports(max_idle=2) as ports, ports.uow() as uow:
        return uow.settings.load()


def _postgres_cpu_s() -> float:
    """User + system CPU of the PostgreSQL server: the postmaster and every backend now alive."""
    data_dir = _stack.stack().postgres.data_dir
    postmaster = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    total = 0.0
    for pid in [postmaster, *map(int, children)]:
        try:
            total += _stack.cpu_seconds(pid)
        except FileNotFoundError:
            pass  # a backend that ended between the listing and the read
    return total


def _handler_cpu_s(token: str) -> float:
    """CPU seconds per heartbeat of the handler alone: the same function served in this process through Flask's test
    client (functions-framework, our endpoint, the token check, the UPDATE through pg8000), no HTTP server; the
    calling thread's CPU time, so the instance's figure less this one is the serving layer (gunicorn's HTTP parsing,
    its threads, the sockets)."""
    import functions_framework

    from shared import metering

    # As in the instance (bench/_stack.FunctionInstance): a function being measured does not meter for the cost model.
    metered, metering._DIR = metering._DIR, None
    try:
        return _handler_alone(functions_framework, token)
    finally:
        metering._DIR = metered


def _handler_alone(functions_framework: Any, token: str) -> float:
    app = functions_framework.create_app(target="mitra_heartbeat", source=str(ROOT / "main.py"), signature_type="http")
    client = app.test_client()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for _ in range(WARM_UP):
        assert client.post("/mitra_heartbeat", data=b"{}", headers=headers).status_code == 200
    started = time.thread_time()
    for _ in range(HEARTBEATS):
        client.post("/mitra_heartbeat", data=b"{}", headers=headers)
    return (time.thread_time() - started) / HEARTBEATS


def _beat(session: requests.Session, url: str, token: str) -> str:
    reply = session.post(
        url, data=b"{}", headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, timeout=30
    )
    if reply.status_code != 200:
        raise RuntimeError(f"mitra_heartbeat answered {reply.status_code}: {reply.text[:200]}")
    return str(reply.json()["status"])


def run() -> str:
    if (skipped := _stack.skip_without_gcloud()) is not None:
        return skipped
    config = _configured()
    paced = pace(MITRAS, config)
    unpaced = pace(0, config)
    interval_s = paced.interval_s
    mitras = [_stack.new_mitra(f"Mitra Hadir {n}") for n in range(SENDERS)]
    tokens = [mitra.session.id_token for mitra in mitras if mitra.session is not None]
    assert len(tokens) == SENDERS
    with _stack.FunctionInstance("mitra_heartbeat") as instance:
        url = f"{instance.url}/mitra_heartbeat"
        sessions = [requests.Session() for _ in range(CALLERS)]

        def send(n: int) -> str:
            return _beat(sessions[n % CALLERS], url, tokens[n % SENDERS])

        with ThreadPoolExecutor(CALLERS) as pool:
            list(pool.map(send, range(WARM_UP)))  # the first connection, the token keys, the pool
            cpu_before, pg_before, started = instance.cpu_s(), _postgres_cpu_s(), time.perf_counter()
            statuses = list(pool.map(send, range(HEARTBEATS)))
            cpu_after, pg_after, elapsed = instance.cpu_s(), _postgres_cpu_s(), time.perf_counter() - started
        for session in sessions:
            session.close()
    offline = sum(status != "online" for status in statuses)
    handler_s = _handler_cpu_s(tokens[0])
    per_beat_s = (cpu_after - cpu_before) / HEARTBEATS
    pg_per_beat_s = (pg_after - pg_before) / HEARTBEATS
    rate = MITRAS / interval_s
    share = rate * per_beat_s
    with_pg = rate * (per_beat_s + pg_per_beat_s)
    unpaced_share = MITRAS / unpaced.interval_s * per_beat_s
    figures = {
        "function_ms_per_heartbeat": round(per_beat_s * 1000, 3),
        "postgres_ms_per_heartbeat": round(pg_per_beat_s * 1000, 3),
        "share_of_one_core": round(share, 4),
        "interval_s": interval_s,
        "unpaced_share_of_one_core": round(unpaced_share, 4),
        "handler_ms_per_heartbeat": round(handler_s * 1000, 3),
    }
    # The interval at which the measured cost would fit the target.
    fitting_interval_s = MITRAS * per_beat_s / TARGET_SHARE
    return "\n".join(
        [
            f"mitra_heartbeat in its own gunicorn (gthread, 1 worker, 16 threads) on the real stack; {HEARTBEATS} "
            f"heartbeats from {SENDERS} online mitras through {CALLERS} callers after {WARM_UP} to warm up, "
            f"{elapsed:.1f} s ({HEARTBEATS / elapsed:.0f}/s); replies not 'online': {offline}",
            f"interval: the pace for {MITRAS:,} online (heartbeat_grace_s {config.heartbeat_grace_s} s, "
            f"heartbeats_per_s_max {config.heartbeats_per_s_max}: the configured settings) = one beat every "
            f"{interval_s} s -> {rate:.0f} heartbeats/s; a vanished mitra is noticed within {paced.grace_s} s "
            f"(within {unpaced.grace_s} s while at most "
            f"{config.heartbeats_per_s_max * unpaced.interval_s:,} are online)",
            f"function CPU per heartbeat (instance process CPU / N): {per_beat_s * 1000:.2f} ms",
            f"PostgreSQL server CPU per heartbeat (every backend over the window, background included): "
            f"{pg_per_beat_s * 1000:.2f} ms",
            f"presence of {MITRAS:,} mitras: {rate:.0f}/s x {per_beat_s * 1000:.2f} ms = {share:.1%} of one core "
            f"(target ≤ {TARGET_SHARE:.0%})  {_stack.verdict(share <= TARGET_SHARE)}",
            f"  with the PostgreSQL server's share: {with_pg:.1%} of one core",
            f"  unpaced (every {unpaced.interval_s} s, as before the pace): {MITRAS / unpaced.interval_s:.0f}/s = "
            f"{unpaced_share:.1%} of one core",
            f"what dominates: of the {per_beat_s * 1000:.2f} ms, the handler alone (functions-framework + Flask + our "
            f"endpoint + token check + the UPDATE through pg8000, in-process, no HTTP server) takes "
            f"{handler_s * 1000:.2f} ms; the serving layer (gunicorn's HTTP parsing, threads, sockets) the other "
            f"{max(per_beat_s - handler_s, 0) * 1000:.2f} ms",
            f"at this cost per heartbeat, {MITRAS:,} mitras fit {TARGET_SHARE:.0%} of one core with one heartbeat "
            f"every {fitting_interval_s:.0f} s (heartbeats_per_s_max {MITRAS / fitting_interval_s:.0f})",
            f"figures: {json.dumps(figures)}",
        ]
    )


if __name__ == "__main__":
    print(run())
