"""The bill: one typical session run through the stack with counters, priced, against an always-on design.

A typical session (compressed in time, not in work): the client pays for a tier on the Xendit stand-in's page,
asks for a mitra, the mitra accepts the offer; 60 messages in bursts of 2-4, sides alternating, the sender's typing
sent every second while composing and cleared after sending, the reader's read receipt once per burst; one extension
requested, accepted and paid half way; then the session runs out on its own timers (warning, expiry, the goodbye
window's close). Both apps listen as the contract says (docs/contract.md, "Firestore documents"): the client its
pairing request, its payments, the session and its latest 20 messages; the mitra its offers, the session and the
latest 20 messages.

Counted, not assumed: Firestore document writes, deletes and reads (the adapter's own reads) at the Firestore
adapter; documents delivered to each app's listeners (what Firestore bills as reads) at the listeners; Pub/Sub
messages at the publisher; Cloud Tasks created and deleted at the scheduler; FCM sends at the sender; every function
invocation and the CPU time of its request thread at `main` (shared/metering.py, switched on for the bench's stack
only); PostgreSQL transactions at the server (pg_stat_database); the gateway's whole CPU time from /proc (the request
threads' share plus what runs beside them: group commits, gRPC, the WSGI server).

Priced with bench/prices.py into cost per 1,000 sessions and per month at 1k, 10k and 100k sessions a day, beside
the same traffic on an always-on design (Cloud Run with WebSockets + Memorystore for Valkey + Cloud SQL), whose
assumptions are printed with it.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _stack, prices
from shared import metering

MESSAGES = 60
SESSION_S = 150  # the tier: long enough for the chat below (~100-115 s, more on a loaded machine), then it runs out
EXTENSION_S = 20
GOODBYE_S = 5  # the goodbye window, shortened so the close task comes soon (its work is the same)
WARNING_S = 30
EVERY_SECOND = "typing every second, false after each send"
RENEW_AFTER = "typing again only after renew_after_s, no false after a send"
# Scheduled sweeps run on their clock (every minute or hour), whatever the sessions: not a session's cost. The bench
# stack ticks them every few seconds, so they are left out of a session's counts.
SCHEDULED = ("outbox_sweep", "idempotency_sweep", "refund_sweep", "retention_sweep", "presence_sweep")
# Request-based billing charges instance time while requests run; an instance busy with sparse requests is billed
# for more than its CPU time. Billed vCPU-seconds = the CPU measured / this utilization (an assumption).
BILLED_UTILIZATION = 0.5


class CountingListener:
    """An app's realtime listener that counts the documents Firestore delivers to it (each one a billed read)."""

    def __init__(self, target: Any, name: str, counts: Counter[str]) -> None:
        self.name = name
        self._counts = counts
        self._condition = threading.Condition()
        self.latest: dict[str, dict[str, Any]] = {}
        self._snapshots = 0
        self._watch = target.on_snapshot(self._on_snapshot)
        with self._condition:
            if not self._condition.wait_for(lambda: self._snapshots > 0, 15):
                raise TimeoutError(f"{name}: no first snapshot")

    def _on_snapshot(self, docs: Any, changes: Any, _read_time: Any) -> None:
        delivered = sum(1 for change in changes if change.type.name != "REMOVED")
        with self._condition:
            self._counts[self.name] += delivered
            self.latest = {doc.reference.path: doc.to_dict() for doc in docs if doc.exists}
            self._snapshots += 1
            self._condition.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 30) -> None:
        with self._condition:
            if not self._condition.wait_for(lambda: predicate(self.latest), timeout):
                raise TimeoutError(f"{self.name}: never saw what it waited for; last {self.latest}")

    def close(self) -> None:
        self._watch.unsubscribe()


@dataclass
class Counts:
    """What one typical session cost, counted."""

    meter: dict[str, float]
    listener_reads: Counter[str]
    pg_transactions: int
    gateway_cpu_s: float
    real_s: float
    notes: list[str] = field(default_factory=list)

    def total(self, prefix: str) -> float:
        return sum(value for kind, value in self.meter.items() if kind.startswith(prefix))

    def _by_function(self, prefix: str) -> dict[str, float]:
        return {kind.split(" ", 1)[1]: value for kind, value in self.meter.items() if kind.startswith(prefix)}

    @property
    def invocations(self) -> dict[str, int]:
        """A session's function invocations (the scheduled sweeps left out)."""
        return {name: int(n) for name, n in self._by_function("invocation ").items() if name not in SCHEDULED}

    @property
    def session_cpu_s(self) -> float:
        """The session's request threads' CPU, scaled up to the gateway's whole CPU by the same share (what runs
        beside the request threads: group commits, gRPC, the WSGI server); the sweeps left out."""
        threads = self._by_function("cpu_ms ")
        everything = sum(threads.values()) / 1000
        session = sum(ms for name, ms in threads.items() if name not in SCHEDULED) / 1000
        return session * (self.gateway_cpu_s / everything) if everything else 0.0

    @property
    def listener_total(self) -> int:
        return sum(self.listener_reads.values())

    @property
    def firestore_reads(self) -> float:
        return self.total("firestore.read") + sum(self.listener_reads.values())


def _gateway_cpu_s() -> float:
    gateway = _stack.stack()._process("gateway")
    assert gateway.proc is not None
    pids = [gateway.proc.pid]
    children = Path(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    return sum(_stack.cpu_seconds(pid) for pid in pids)


def _pg_transactions() -> int:
    from emulators.stack import DATABASE

    with _stack.halo_db().transaction() as tx:
        tx.execute("SELECT pg_stat_clear_snapshot()")
        found = tx.scalar(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :d", {"d": DATABASE}
        )
    return int(found)


def _meter_totals() -> dict[str, float]:
    folder = os.environ.get("HALO_METER_DIR")
    assert folder, "the bench's stack meters (bench/_stack.py sets HALO_METER_DIR)"
    return metering.totals(Path(folder))


def _typical_session(rhythm: str) -> Counts:
    from google.cloud import firestore

    from tests.support import world

    local = _stack.stack()
    db = _stack.halo_db()
    client_fs = firestore.Client(project=local.env()["GOOGLE_CLOUD_PROJECT"])
    tier = _stack.add_tier(SESSION_S, 50_000)
    extra = _stack.add_tier(EXTENSION_S, 15_000)
    _stack.quiet_world()
    mitra = _stack.new_mitra("Mitra Biaya")
    client = _stack.new_client("Klien Biaya")
    assert mitra.session is not None and client.session is not None
    reads: Counter[str] = Counter()
    listeners: list[CountingListener] = []

    def listen(target: Any, name: str) -> CountingListener:
        listener = CountingListener(target, name, reads)
        listeners.append(listener)
        return listener

    def ok(reply: Any, what: str) -> Any:
        return _stack.people.ok(reply, what)

    settings = _stack.app_config(goodbye_window_s=GOODBYE_S, session_warning_s=WARNING_S)
    settings.__enter__()
    time.sleep(0.5)
    meter_before, pg_before, cpu_before = _meter_totals(), _pg_transactions(), _gateway_cpu_s()
    started = time.monotonic()
    try:
        offers = listen(client_fs.collection(f"mitras/{mitra.session.uid}/offers"), "mitra: offers")
        # The payment: checkout, the client's app follows its payment document, pays on Xendit's page.
        opened = ok(client.post("billing_checkout", {"tier_id": tier, "purpose": "session"}), "billing_checkout")
        payment = listen(client_fs.document(f"payments/{opened['transaction_id']}"), "client: payment")
        world.pay_invoice(db, local.ports.xendit, str(opened["transaction_id"]))
        payment.wait_for(lambda docs: any(doc.get("status") == "paid" for doc in docs.values()))
        # Pairing: the request, the blast's offer, the mitra's accept.
        request = ok(client.post("pairing_request", {"tier_id": tier}), "pairing_request")
        listen(client_fs.document(f"pairing_requests/{request['request_id']}"), "client: pairing request")
        offers.wait_for(lambda docs: any(path.endswith(request["request_id"]) for path in docs))
        accepted = ok(mitra.post("pairing_accept", {"request_id": request["request_id"]}), "pairing_accept")
        session_id = accepted["session_id"]
        sessions = {
            side: listen(client_fs.document(f"sessions/{session_id}"), f"{side}: session")
            for side in ("client", "mitra")
        }
        for side in ("client", "mitra"):
            page = (
                client_fs.collection(f"sessions/{session_id}/messages")
                .order_by("seq", direction=firestore.Query.DESCENDING)
                .limit(20)
            )
            listen(page, f"{side}: latest 20 messages")
        sent, bursts = _chat(client, mitra, session_id, extra=extra, listen=listen, client_fs=client_fs, rhythm=rhythm)
        chatted_s = time.monotonic() - started

        def closed(docs: dict[str, dict[str, Any]]) -> bool:
            return any(doc.get("status") == "closed" for doc in docs.values())

        sessions["client"].wait_for(closed, timeout=SESSION_S + EXTENSION_S + GOODBYE_S + 60)
        sessions["mitra"].wait_for(closed, timeout=10)
        time.sleep(3)  # the last pushes and outbox marks after the close
    finally:
        for listener in listeners:
            listener.close()
        settings.__exit__(None, None, None)
    meter_after, pg_after, cpu_after = _meter_totals(), _pg_transactions(), _gateway_cpu_s()
    meter = {kind: meter_after.get(kind, 0.0) - meter_before.get(kind, 0.0) for kind in meter_after}
    return Counts(
        meter={kind: value for kind, value in meter.items() if value},
        listener_reads=reads,
        pg_transactions=pg_after - pg_before,
        gateway_cpu_s=cpu_after - cpu_before,
        real_s=time.monotonic() - started,
        notes=[f"{sent} messages in {bursts} bursts, {rhythm}, chat {chatted_s:.0f} s; then the session's own timers"],
    )


def _chat(
    client: Any,
    mitra: Any,
    session_id: str,
    *,
    extra: str,
    listen: Callable[[Any, str], Any],
    client_fs: Any,
    rhythm: str,
) -> tuple[int, int]:
    """60 messages in bursts, typing while composing, a receipt per burst; the extension half way. `rhythm` is how
    the apps send typing: EVERY_SECOND (true every second while composing, false after each send: what the apps were
    told before) or RENEW_AFTER (true when composing starts and again only `renew_after_s` after the last call, no
    false after a send: docs/contract.md now)."""
    from tests.support import world

    local = _stack.stack()
    db = _stack.halo_db()
    rng = random.Random(60)

    def ok(reply: Any, what: str) -> Any:
        return _stack.people.ok(reply, what)

    apps = {"client": client, "mitra": mitra}
    last_typing = {"client": -1e9, "mitra": -1e9}
    renew_after = {"client": 0.0, "mitra": 0.0}
    sent, side, bursts = 0, "client", 0
    while sent < MESSAGES:
        size = min(MESSAGES - sent, rng.randint(2, 4))
        sender, reader = apps[side], apps["mitra" if side == "client" else "client"]
        last = None
        for _ in range(size):
            compose_s, typed = rng.uniform(1.0, 2.0), 0.0
            while typed < compose_s:
                due = time.monotonic() - last_typing[side] >= renew_after[side]
                if rhythm == EVERY_SECOND or due:
                    typing = {"session_id": session_id, "typing": True}
                    answer = ok(sender.post("chat_typing", typing), "chat_typing")
                    last_typing[side] = time.monotonic()
                    renew_after[side] = float(answer.get("renew_after_s", 0)) if rhythm == RENEW_AFTER else 0.0
                step = min(1.0, compose_s - typed)
                time.sleep(step)
                typed += step
            body = {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": "cerita lagi ya"}
            last = ok(sender.post("chat_send", body), "chat_send")["message_id"]
            if rhythm == EVERY_SECOND:
                ok(sender.post("chat_typing", {"session_id": session_id, "typing": False}), "chat_typing")
            sent += 1
        receipt = {"session_id": session_id, "up_to_message_id": last, "status": "read"}
        ok(reader.post("chat_receipts", receipt), "chat_receipts")
        bursts += 1
        side = "mitra" if side == "client" else "client"
        if bursts == 10:  # half way: one extension, accepted and paid
            extension = ok(
                client.post("extension_request", {"session_id": session_id, "tier_id": extra}),
                "extension_request",
            )
            ok(
                mitra.post("extension_respond", {"extension_id": extension["extension_id"], "accept": True}),
                "extension_respond",
            )
            paying = ok(
                client.post(
                    "billing_checkout",
                    {"tier_id": extra, "purpose": "extension", "extension_id": extension["extension_id"]},
                ),
                "billing_checkout",
            )
            listen(client_fs.document(f"payments/{paying['transaction_id']}"), "client: payment")
            world.pay_invoice(db, local.ports.xendit, str(paying["transaction_id"]))
    return sent, bursts


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit: str
    per_session: float  # USD


def _our_lines(counts: Counts) -> list[Line]:
    invocations = sum(counts.invocations.values())
    # Every function is deployed at 1 vCPU, 0.5 GiB (infra/functions.tf).
    billed_s = counts.session_cpu_s / BILLED_UTILIZATION
    pubsub_messages = counts.total("pubsub.message")
    tasks = counts.total("tasks.create") + counts.total("tasks.delete")
    task_pushes = sum(n for name, n in counts.invocations.items() if name.startswith("task_"))
    return [
        Line("Firestore document writes", counts.total("firestore.write"), "writes", prices.FIRESTORE_WRITE),
        Line("Firestore deletes", counts.total("firestore.delete"), "deletes", prices.FIRESTORE_DELETE),
        Line(
            "Firestore reads: the apps' listeners", sum(counts.listener_reads.values()), "reads", prices.FIRESTORE_READ
        ),
        Line("Firestore reads: the functions' own", counts.total("firestore.read"), "reads", prices.FIRESTORE_READ),
        Line("Function requests", invocations, "requests", prices.RUN_REQUEST),
        Line(
            f"Function vCPU time ({counts.session_cpu_s:.2f} s CPU / {BILLED_UTILIZATION} busy)",
            billed_s,
            "vCPU-s",
            prices.RUN_VCPU_SECOND,
        ),
        Line("Function memory time (0.5 GiB)", billed_s * 0.5, "GiB-s", prices.RUN_GIB_SECOND),
        Line("Pub/Sub (publish + push, 1 KB each)", pubsub_messages * 2, "KB", prices.PUBSUB_PER_KB),
        Line("Cloud Tasks operations", tasks + task_pushes, "ops", prices.TASKS_OPERATION),
    ]


def _cost(line: Line) -> float:
    return line.quantity * line.per_session


def _always_on_month(sessions_per_day: int) -> tuple[float, list[str]]:
    """Cloud Run (instance-based billing, WebSockets) + one Valkey node + the same Cloud SQL, same traffic."""
    # Assumptions, written beside the figure: one 1 vCPU / 1 GiB instance holds 1,000 open sockets and serves the
    # chat at 20 % CPU; sessions spread over 16 busy hours a day, each 30 minutes with both sides connected; two
    # instances at least (one per zone); Firestore not used (Valkey pub/sub fans out), so no document operations.
    concurrent = sessions_per_day / (16 * 3600) * 1800 * 2
    instances = max(2, -(-concurrent // 1000))
    run = instances * prices.SECONDS_PER_MONTH * (prices.RUN_ALWAYS_VCPU_SECOND + prices.RUN_ALWAYS_GIB_SECOND)
    valkey = prices.VALKEY_NODE_HOUR * 24 * 30
    total = run + valkey + prices.CLOUD_SQL_MONTH
    return total, [
        f"{concurrent:.0f} sockets at the busiest hour -> {instances:.0f} instance(s) of 1 vCPU/1 GiB, always on: "
        f"${run:,.0f}",
        f"Valkey node ${valkey:,.0f}; Cloud SQL ${prices.CLOUD_SQL_MONTH:,.0f}",
    ]


def _instances_per_warm_function() -> int:
    """infra/variables.tf's default for var.http_min_instances: what each warm app-facing function keeps."""
    text = (Path(__file__).resolve().parents[1] / "infra" / "variables.tf").read_text()
    found = re.search(r'variable "http_min_instances" \{[^}]*?default\s*=\s*(\d+)', text, re.S)
    assert found, "infra/variables.tf declares http_min_instances with a numeric default"
    return int(found[1])


def _warm_functions(*, every_app_function: bool) -> list[str]:
    """The functions infra keeps warm, read from functions/manifest.py as infra/functions.tf reads it: before this
    round every app-facing (http) function kept the class's min_instances; now only those marked warm do."""
    from functions.manifest import FUNCTIONS

    return [spec.name for spec in FUNCTIONS if spec.trigger == "http" and (every_app_function or spec.warm)]


def _warm_month(warm: list[str]) -> float:
    per_instance = prices.SECONDS_PER_MONTH * (prices.RUN_IDLE_VCPU_SECOND + 0.5 * prices.RUN_IDLE_GIB_SECOND)
    return len(warm) * _instances_per_warm_function() * per_instance


def _month_lines(session_lines: list[Line], per_day: int, warm: list[str]) -> dict[str, float]:
    """The monthly bill by line: the fixed lines (warm instances, Cloud SQL) and each per-session line x sessions."""
    lines = {
        "warm instances (idle rate)": _warm_month(warm),
        "Cloud SQL": prices.CLOUD_SQL_MONTH,
    }
    for line in session_lines:
        lines[line.item.split(" (")[0]] = _cost(line) * per_day * 30
    return lines


def _counted(counts: Counts) -> list[str]:
    return [
        f"one typical session ({'; '.join(counts.notes)}; {counts.real_s:.0f} s real time)",
        f"  Firestore writes {counts.total('firestore.write'):.0f}, deletes {counts.total('firestore.delete'):.0f}, "
        f"reads by the functions {counts.total('firestore.read'):.0f}",
        "  listener reads (documents delivered to the apps): "
        + ", ".join(f"{name} {n}" for name, n in sorted(counts.listener_reads.items())),
        f"  Pub/Sub messages {counts.total('pubsub.message'):.0f}; "
        f"Cloud Tasks created {counts.total('tasks.create'):.0f}, deleted {counts.total('tasks.delete'):.0f}; "
        f"FCM sends {counts.total('fcm.send'):.0f}; "
        f"PostgreSQL transactions {counts.pg_transactions} (server count: the scheduled sweeps' and the bench's own "
        "included)",
        f"  function invocations {sum(counts.invocations.values())}: "
        + ", ".join(f"{name} {n}" for name, n in sorted(counts.invocations.items(), key=lambda item: -item[1])),
        f"  CPU: the session's requests {counts.session_cpu_s:.2f} s (request threads scaled to the gateway's whole "
        f"{counts.gateway_cpu_s:.2f} s, the sweeps' share left out)",
    ]


def _table(lines: list[Line]) -> list[str]:
    rows = [f"  {'line item (per session)':<56} {'quantity':>9} {'USD':>10}"]
    rows += [
        f"  {line.item:<56} {line.quantity:>9.1f} {_cost(line):>10.6f}"
        for line in sorted(lines, key=_cost, reverse=True)
    ]
    rows.append(f"  {'total per session':<56} {'':>9} {sum(_cost(line) for line in lines):>10.6f}")
    return rows


def report(before: Counts, after: Counts) -> str:
    ours_before, ours_after = _our_lines(before), _our_lines(after)
    total_before = sum(_cost(line) for line in ours_before)
    total_after = sum(_cost(line) for line in ours_after)
    biggest = max(range(len(ours_before)), key=lambda i: _cost(ours_before[i]))
    was, now = _cost(ours_before[biggest]), _cost(ours_after[biggest])
    cut = 1 - now / was
    monthly_cuts: list[float] = []
    cold_start = 5 * (prices.RUN_VCPU_SECOND + 0.5 * prices.RUN_GIB_SECOND)
    lines = [
        f"prices: bench/prices.py, {prices.PRICES_AS_OF}; CPU billed as measured CPU / {BILLED_UTILIZATION} "
        "(request-based billing: instance time while requests run)",
        "",
        "BEFORE: the apps as they were told (typing every second while composing, false after each send)",
        *_counted(before),
        *_table(ours_before),
        f"  biggest line item: {ours_before[biggest].item} ({was / total_before:.0%} of the per-session cost)",
        "",
        "AFTER: the apps as docs/contract.md tells them now (chat_typing answers renew_after_s: typing again only "
        "that long after the last call, no false after a send; the other side sees the same lease)",
        *_counted(after),
        *_table(ours_after),
        "",
        f"biggest line item ({ours_before[biggest].item.split(' (')[0]}): ${was * 1000:.3f} -> ${now * 1000:.3f} per "
        f"1,000 sessions, cut {cut:.0%} (per session; the monthly bill's biggest line is below)",
        f"invocations per session {sum(before.invocations.values())} -> {sum(after.invocations.values())}; "
        f"Firestore writes {before.total('firestore.write'):.0f} -> {after.total('firestore.write'):.0f}; "
        f"per 1,000 sessions ${total_before * 1000:.2f} -> ${total_after * 1000:.2f}",
        "",
    ]
    warm_before = _warm_functions(every_app_function=True)
    warm_after = _warm_functions(every_app_function=False)
    instances = _instances_per_warm_function()
    lines += [
        f"warm instances (functions/manifest.py x infra http_min_instances = {instances}, idle rate): before, every "
        f"app-facing function: {len(warm_before)} -> ${_warm_month(warm_before):,.0f}/month; after, only those "
        f"marked warm: {len(warm_after)} ({', '.join(warm_after)}) -> ${_warm_month(warm_after):,.0f}/month",
        "",
        f"{'sessions/day':>12} {'ours before':>12} {'ours after':>11} {'always-on':>10}   ($/month)",
    ]
    verdicts: list[str] = []
    for per_day in (1_000, 10_000, 100_000):
        always, _ = _always_on_month(per_day)
        month_before = _month_lines(ours_before, per_day, warm_before)
        month_after = _month_lines(ours_after, per_day, warm_after)
        lines.append(
            f"{per_day:>12,} {sum(month_before.values()):>12,.0f} {sum(month_after.values()):>11,.0f} {always:>10,.0f}"
        )
        top = max(month_before, key=lambda item: month_before[item])
        top_cut = 1 - month_after[top] / month_before[top]
        verdicts.append(
            f"  at {per_day:,}/day: {top} ${month_before[top]:,.0f} of ${sum(month_before.values()):,.0f} -> "
            f"${month_after[top]:,.0f}, cut {top_cut:.0%}"
            + (f"  {_stack.verdict(top_cut >= 1 / 3)}" if per_day <= 10_000 else " (not the target's range)")
        )
        if per_day <= 10_000:
            monthly_cuts.append(top_cut)
    lines += [
        "biggest line of the monthly bill, before -> after (target: cut by >= 1/3 at 1k-10k sessions/day):",
        *verdicts,
        f"biggest line cut by >= 1/3: {_stack.verdict(all(cut >= 1 / 3 for cut in monthly_cuts))}",
        "ours, besides: the scheduled sweeps (a few cents) left out; the cold starts the cold functions now pay are "
        f"billed as CPU while they start: ~5 s of 1 vCPU each (${cold_start:.5f}), so even 1,000 cold starts a day "
        f"add ${1000 * 30 * cold_start:,.0f}/month",
    ]
    for per_day in (1_000, 100_000):
        lines.append(f"always-on at {per_day:,}/day: {'; '.join(_always_on_month(per_day)[1])}")
    lines.append(
        "always-on assumptions: 1,000 sockets per 1 vCPU/1 GiB instance, sessions over 16 busy hours, both sides "
        "connected 30 minutes, at least 2 instances, no Firestore (Valkey fans out), the same Cloud SQL; its "
        "engineering (reconnects, presence, fan-out across instances) not priced"
    )
    return "\n".join(lines)


def run() -> str:
    if (skipped := _stack.skip_without_gcloud()) is not None:
        return skipped
    _stack.settle_earlier_runs()
    before = _typical_session(EVERY_SECOND)
    after = _typical_session(RENEW_AFTER)
    return report(before, after)


if __name__ == "__main__":
    print(run())
