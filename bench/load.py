"""`make load` (`python -m bench.load`): full sessions at 1x, 2x and 4x a base rate on one box, loopback only.

The soak's population (bench/soak.py: clients that pay on the Xendit stand-in, ask for a mitra, chat, extend about
half their sessions and end about half early; mitras that race for offers and heartbeat), without the restarts, in
three phases of LOAD_PHASE_S seconds (default 60) with LOAD_BASE clients (default 3) times 1, 2 and 4 and a mitra
for every two clients; each phase's sessions are let finish before the next starts. Measured per phase: each
function's latency as the apps see it (p50/p99), chat_send → the recipient's listener on the messages (p50/p99),
errors (any 5xx, or a flow a client gave up on), and CPU milliseconds per completed session of the gateway (the
functions) and of each stand-in (PostgreSQL, the Firestore and Pub/Sub emulators) from /proc.
Targets (issue 26): zero errors; CPU per session at 4x within 1.2x of 1x; the rate where p99 chat latency first
exceeds 250 ms on this machine, and what saturates: when 4x stays under it, the rate keeps doubling (8x, 16x, ...)
up to LOAD_MAX_MULTIPLE (default 32) until a phase passes it. The simulated apps run in this process on the same
cores, so its own CPU is counted beside the stack's parts (`driver`): the box, not only the backend, saturates.
The figures replace the `load` section of bench/REPORT.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _report, soak
from bench._stack import cpu_seconds, p50, percentile, verdict

MULTIPLES = (1, 2, 4)
# The phase whose CPU per session is held to CPU_GROWTH x the first's.
GROWTH_AT = 4
CHAT_P99_MS = 250.0
CPU_GROWTH = 1.2


def _env(name: str, default: float) -> float:
    return soak._env_number(name, default)


@dataclass
class Timings:
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    chat_ms: list[float] = field(default_factory=list)
    completed: int = 0


class TimedPatient(soak.Patient):
    def __init__(self, record: soak.Record, stop: threading.Event, timings: Timings) -> None:
        super().__init__(record, stop)
        self.timings = timings

    def call(self, app: Any, function: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        reply = super().call(app, function, body, **kwargs)
        if reply is not None and reply.status == 200:
            with self.timings.lock:
                self.timings.calls[function].append((time.perf_counter() - started) * 1000)
        return reply


class LoadClient(soak.ClientActor):
    """The soak's client, counting its completed sessions and timing each message to the other side's listener."""

    def __init__(self, client: Any, world: soak.World, stop: threading.Event, timings: Timings) -> None:
        super().__init__(client, world, stop)
        self.timings = timings

    def one_session(self) -> None:
        sessions, failures = len(self.record.sessions), self.record.failures.total()
        super().one_session()
        if len(self.record.sessions) > sessions and self.record.failures.total() == failures:
            with self.timings.lock:
                self.timings.completed += 1

    def chat(self, session_id: str, mitra_app: Any, mitra_uid: str, count: int) -> None:
        from google.cloud import firestore

        sent_at: dict[str, float] = {}
        arrived: dict[str, float] = {}
        lock = threading.Condition()

        def on_snapshot(_docs: Any, changes: Any, _read_time: Any) -> None:
            now = time.perf_counter()
            with lock:
                for change in changes:
                    if change.type.name == "ADDED":
                        arrived.setdefault(change.document.id, now)
                lock.notify_all()

        client = firestore.Client(project="demo-halo")
        watch = client.collection(f"sessions/{session_id}/messages").on_snapshot(on_snapshot)
        original = self.patient.call

        def timed_send(app: Any, function: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
            started = time.perf_counter()
            reply = original(app, function, body, **kwargs)
            if function == "chat_send" and reply is not None and reply.status == 200:
                sent_at[str(reply.body["message_id"])] = started
            return reply

        self.patient.call = timed_send  # type: ignore[method-assign]
        try:
            super().chat(session_id, mitra_app, mitra_uid, count)
            with lock:
                lock.wait_for(lambda: all(m in arrived for m in sent_at), 10)
        finally:
            self.patient.call = original  # type: ignore[method-assign]
            watch.unsubscribe()
        with self.timings.lock:
            self.timings.chat_ms.extend((arrived[m] - sent_at[m]) * 1000 for m in sent_at if m in arrived)


@dataclass(frozen=True)
class Phase:
    multiple: int
    clients: int
    seconds: float
    timings: Timings
    record: soak.Record
    cpu_s: dict[str, float]
    load_average: float

    @property
    def errors(self) -> int:
        server = sum(
            n for (_, status), n in self.record.statuses.items() if status.startswith("5") or status == "connection"
        )
        return server + self.record.failures.total()

    @property
    def sessions_per_minute(self) -> float:
        return self.timings.completed * 60 / self.seconds

    def cpu_ms_per_session(self, part: str) -> float:
        return self.cpu_s[part] * 1000 / max(1, self.timings.completed)


def _tree_cpu(pid: int) -> float:
    total = 0.0
    try:
        total += cpu_seconds(pid)
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += _tree_cpu(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def _parts_cpu(stack: Any) -> dict[str, float]:
    processes = {process.name: process for process in stack.processes}
    processes["postgres"] = stack.postgres.process
    found = {}
    for name in ("gateway", "postgres", "firestore", "pubsub"):
        process = processes.get(name)
        found[name] = _tree_cpu(process.proc.pid) if process is not None and process.proc is not None else 0.0
    found["driver"] = cpu_seconds(os.getpid())  # the simulated apps (every thread of this process)
    return found


def _chat_p99_over(phase: Phase) -> bool:
    return bool(phase.timings.chat_ms) and percentile(phase.timings.chat_ms, 99) > CHAT_P99_MS


def _phase(
    stack: Any,
    *,
    multiple: int,
    base: int,
    seconds: float,
    make: Callable[[int, int], tuple[list[Any], list[Any]]],
    tiers: tuple[str, str],
) -> Phase:
    clients, mitras = make(base * multiple, max(2, base * multiple // 2))
    record, timings = soak.Record(), Timings()
    stop_clients, stop_mitras = threading.Event(), threading.Event()
    world = soak.World(
        TimedPatient(record, stop_clients, timings),
        soak.Documents(),
        {m.uid: m for m in mitras},
        *tiers,
        xendit_port=stack.ports.xendit,
    )
    mitra_actors = [
        soak.MitraActor(m, TimedPatient(record, stop_mitras, timings), world.documents, stop_mitras) for m in mitras
    ]
    client_actors = [LoadClient(c, world, stop_clients, timings) for c in clients]
    cpu_before = _parts_cpu(stack)
    load_average = os.getloadavg()[0]
    started = time.monotonic()
    for actor in (*mitra_actors, *client_actors):
        actor.start()
    time.sleep(seconds)
    stop_clients.set()
    drain_until = time.monotonic() + soak.SESSION_S + soak.EXTENSION_S + 60
    for actor in client_actors:
        actor.join(max(0.0, drain_until - time.monotonic()))
    stop_mitras.set()
    for mitra in mitras:
        mitra.stop_heartbeat()
    cpu_after = _parts_cpu(stack)
    return Phase(
        multiple,
        len(clients),
        time.monotonic() - started,
        timings,
        record,
        {part: cpu_after[part] - cpu_before[part] for part in cpu_after},
        load_average,
    )


def render(phases: list[Phase], base: int) -> str:
    lines = [
        f"base: {base} clients (a mitra for every two), phases of {phases[0].seconds:.0f} s incl. letting sessions "
        "finish; soak's short sessions (bench/soak.py SETTINGS), no restarts",
        "",
    ]
    functions = sorted({f for phase in phases for f in phase.timings.calls})
    header = f"{'function (ms as the apps see it)':<24}" + "".join(
        f" {f'{p.multiple}x p50':>9} {'p99':>7}" for p in phases
    )
    lines += [header, "-" * len(header)]
    for function in functions:
        row = f"{function:<24}"
        for phase in phases:
            values = phase.timings.calls.get(function) or []
            row += f" {p50(values):>9.0f} {percentile(values, 99):>7.0f}" if values else f" {'-':>9} {'-':>7}"
        lines.append(row)
    lines.append("")
    for phase in phases:
        chat = phase.timings.chat_ms
        chat_text = (
            f"p50 {p50(chat):.0f} ms, p99 {percentile(chat, 99):.0f} ms ({len(chat)} messages)" if chat else "none"
        )
        parts = ", ".join(f"{part} {phase.cpu_ms_per_session(part):.0f}" for part in phase.cpu_s)
        lines.append(
            f"{phase.multiple}x ({phase.clients} clients, load average {phase.load_average:.1f} at its start): "
            f"completed sessions {phase.timings.completed} ({phase.sessions_per_minute:.1f}/min), errors "
            f"{phase.errors} {verdict(phase.errors == 0)}; chat_send → listener {chat_text}; CPU ms per completed "
            f"session: {parts}"
        )
    first, last = phases[0], phases[-1]
    grown = next((p for p in phases if p.multiple == GROWTH_AT), last)
    growth = grown.cpu_ms_per_session("gateway") / max(1e-9, first.cpu_ms_per_session("gateway"))
    lines.append(
        f"gateway CPU per session at {grown.multiple}x / at {first.multiple}x = {growth:.2f} "
        f"(target ≤ {CPU_GROWTH})  {verdict(growth <= CPU_GROWTH)}"
    )
    over = next((p for p in phases if _chat_p99_over(p)), None)
    if over is None:
        lines.append(
            f"p99 chat latency stayed ≤ {CHAT_P99_MS:.0f} ms up to {last.multiple}x ({last.clients} clients, "
            f"LOAD_MAX_MULTIPLE): no saturation found within the bound"
        )
    else:
        shares = sorted(((over.cpu_s[part] / over.seconds, part) for part in over.cpu_s), reverse=True)
        box = sum(share for share, _ in shares)
        lines.append(
            f"p99 chat latency first over {CHAT_P99_MS:.0f} ms at {over.multiple}x ({over.clients} clients, "
            f"{over.sessions_per_minute:.1f} completed sessions/min); CPU over that phase, in "
            "cores: " + ", ".join(f"{part} {share:.2f}" for share, part in shares) + f" = {box:.2f} of the box's "
            f"{os.cpu_count()}: "
            + (
                "the box's cores saturate"
                if box >= 0.8 * (os.cpu_count() or 1)
                else f"no core saturated; the busiest part is {shares[0][1]}"
            )
        )
    return "\n".join(lines)


def write_report(figures: str) -> None:
    """The `load` section of bench/REPORT.md, replaced (the rest of the report is `make bench`'s)."""
    _report.write_section("load", _report.section("load", figures))


def main() -> int:
    from emulators.simulator import AuthEmulator, Client, Mitra
    from emulators.stack import DATABASE, gcloud_emulators, start_on_free_ports
    from shared.adapters.postgres.database import Database
    from tests.support import people

    if gcloud_emulators() is None:
        print("load skipped: the Google Cloud CLI's Firestore/Pub/Sub emulators are not installed", file=sys.stderr)
        return 2
    base = int(_env("LOAD_BASE", 3))
    seconds = _env("LOAD_PHASE_S", 60)
    state = Path(tempfile.mkdtemp(prefix="halo-load-"))
    stack = start_on_free_ports(state, tick_s=5.0, identity_cache_s=5.0, progress=print, gateway_threads=48)
    try:
        os.environ.update(stack.env())
        from shared.config import get_settings

        get_settings.cache_clear()
        db = Database(lambda: stack.postgres.connect(DATABASE), max_idle=2)
        auth = AuthEmulator(f"http://127.0.0.1:{stack.ports.auth}")
        people.Settings(db).change(**soak.SETTINGS)
        tiers = (
            people.add_tier(db, soak.SESSION_S, 5000, prefix="load"),
            people.add_tier(db, soak.EXTENSION_S, 2000, prefix="load"),
        )

        def make(client_count: int, mitra_count: int) -> tuple[list[Any], list[Any]]:
            people.quiet_world(db)
            mitras = []
            for n in range(mitra_count):
                phone = f"+62818{uuid.uuid4().int % 10**8:08d}"
                with db.transaction() as tx:
                    tx.execute(
                        "INSERT INTO mitras (phone, display_name) VALUES (:p, :n)", {"p": phone, "n": f"Mitra {n}"}
                    )
                mitra = Mitra.sign_in(auth, stack.functions_url, phone)
                mitra.online()
                mitra.keep_alive(every_s=20)
                mitras.append(mitra)
            clients = [Client.sign_up(auth, stack.functions_url, f"Klien {n}") for n in range(client_count)]
            return clients, mitras

        phases = []
        for multiple in MULTIPLES:
            print(f"[load] phase {multiple}x", flush=True)
            phases.append(_phase(stack, multiple=multiple, base=base, seconds=seconds, make=make, tiers=tiers))
        # The saturation search: doubling while p99 chat latency holds, bounded.
        multiple, most = MULTIPLES[-1] * 2, int(_env("LOAD_MAX_MULTIPLE", 32))
        while not any(_chat_p99_over(p) for p in phases) and multiple <= most:
            print(
                f"[load] phase {multiple}x (looking for where p99 chat latency passes {CHAT_P99_MS:.0f} ms)", flush=True
            )
            phases.append(_phase(stack, multiple=multiple, base=base, seconds=seconds, make=make, tiers=tiers))
            multiple *= 2
        db.close()
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
    figures = render(phases, base)
    print(figures)
    write_report(figures)
    print(f"written to {_report.REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
