"""`make soak` (`python -m bench.soak`): full sessions under faults, then an invariant checker.

A scripted population (`SOAK_CLIENTS`, default 60 clients; `SOAK_MITRAS`, 15 mitras), made the way the apps make
them (emulators/simulator.py), runs full sessions for `SOAK_MINUTES` (default 5): each client buys a short session on
the Xendit stand-in, asks for a mitra, the mitras race for the offer, both sides chat, about half the sessions are
extended (asked, accepted, paid) and about half are ended early, the rest run out on their timer. Meanwhile a chaos
loop restarts, at random moments, PostgreSQL, the Firestore emulator, the Pub/Sub emulator, the Tasks emulator and the
gateway (`LocalStack.blip`: down for a moment, back with what it held, as the managed services come back). Every
client retries as an app does: the same idempotency key or `client_message_id`, after `Retry-After`.

When the time is up the clients finish their sessions, everything is back, and an invariant checker reads PostgreSQL,
Firestore and the history API and prints, with zero as the goal: double matches, lost messages (200 but missing from
Firestore or history), messages out of order, payments applied twice or not at all, credits lost, sessions not closed
within 2 s of `ends_at` once everything is back, offers left for matched requests. The figures replace the `soak`
section of bench/REPORT.md. Not part of `make test` or `make bench`.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench import _report

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("postgres", "firestore", "pubsub", "tasks", "gateway")
SESSION_S = 40
EXTENSION_S = 15
# Settings that make a session's whole life fit in a minute (as an admin could set them).
SETTINGS = {
    "session_warning_s": 10,
    "goodbye_window_s": 5,
    "extension_timeout_s": 20,
    "pairing_search_window_s": 30,
    "payment_expiry_s": 300,
    "messages_per_minute": 1000,
    "pairing_requests_per_hour": 1000,
}
# How far from an outage a timer must be to count as "once everything is back".
CLEAR_BEFORE_S = 2.0
CLEAR_AFTER_S = 5.0
LATE_S = 2.0


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


# -- what the population did, as the apps saw it -------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    session_id: str
    message_id: str
    sender_uid: str
    order: int  # the sender's own count in this session: its messages must keep this order


@dataclass(frozen=True)
class Outage:
    part: str
    down_at: float
    up_at: float


@dataclass
class Record:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    accepted: dict[str, list[str]] = field(default_factory=dict)  # request id → mitra uids told 200
    paid: dict[str, str] = field(default_factory=dict)  # transaction id → purpose, paid on the Xendit stand-in
    sessions: dict[str, str] = field(default_factory=dict)  # session id → client uid
    outages: list[Outage] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # flows a client gave up on, by step
    gave_up_on: list[str] = field(default_factory=list)  # which ones, for a look afterwards

    def status(self, function: str, status: str) -> None:
        with self.lock:
            self.statuses[(function, status)] += 1


# -- the apps ---------------------------------------------------------------------------------------------------------


class Patient:
    """Calls as an app does: a connection error, a 5xx or a 429 is tried again (after Retry-After) with the same
    body and idempotency key until `patience` runs out; any other answer is the answer."""

    def __init__(self, record: Record, stop: threading.Event) -> None:
        self.record = record
        self.stop = stop

    def call(
        self,
        app: Any,
        function: str,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        get: bool = False,
        patience: float = 120,
    ) -> Any:
        deadline = time.monotonic() + patience
        while True:
            try:
                reply = app.get(function, **(body or {})) if get else app.post(function, body, idempotency_key=key)
            except requests.RequestException:
                self.record.status(function, "connection")
                if time.monotonic() > deadline:
                    return None
                time.sleep(1)
                continue
            self.record.status(function, str(reply.status))
            if reply.status == 500 or reply.status > 503:
                with self.record.lock:
                    self.record.server_errors.append(f"{function} {reply.status} {str(reply.body)[:160]}")
            if (reply.status >= 500 or reply.status == 429) and time.monotonic() < deadline:
                time.sleep(min(5.0, float(reply.headers.get("Retry-After", "1") or 1)))
                continue
            return reply


class Documents:
    """Firestore documents as an app reads them, through an emulator that may be down a moment."""

    def __init__(self) -> None:
        from google.cloud import firestore

        self._client = firestore.Client(project="demo-halo")

    def get(self, path: str) -> dict[str, Any] | None:
        for _ in range(30):
            try:
                snapshot = self._client.document(path).get(timeout=5)
                return snapshot.to_dict() if snapshot.exists else None
            except Exception:  # unavailable, deadline: the emulator is restarting
                time.sleep(1)
        return None

    def wait(self, path: str, done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.get(path)
            if doc is not None and done(doc):
                return doc
            time.sleep(1)
        return None

    def collection(self, path: str) -> dict[str, dict[str, Any]]:
        for _ in range(30):
            try:
                return {doc.id: doc.to_dict() or {} for doc in self._client.collection(path).stream(timeout=10)}
            except Exception:
                time.sleep(1)
        raise RuntimeError(f"could not read {path}")


class MitraActor(threading.Thread):
    """A mitra online for the whole soak: watches its offers (reading them every second) and races for each."""

    def __init__(self, mitra: Any, patient: Patient, documents: Documents, stop: threading.Event) -> None:
        super().__init__(name=f"mitra-{mitra.uid[:6]}", daemon=True)
        self.mitra = mitra
        self.patient = patient
        self.documents = documents
        self.stop = stop
        self.tried: set[str] = set()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                offers = self.documents.collection(f"mitras/{self.mitra.uid}/offers")
            except RuntimeError:
                continue
            for request_id, offer in offers.items():
                if request_id in self.tried or offer.get("status", "offered") != "offered":
                    continue
                self.tried.add(request_id)
                time.sleep(random.uniform(0, 0.3))
                reply = self.patient.call(self.mitra.app, "pairing_accept", {"request_id": request_id}, patience=30)
                if reply is not None and reply.status == 200:
                    with self.patient.record.lock:
                        self.patient.record.accepted.setdefault(request_id, []).append(self.mitra.uid)
            time.sleep(1)


@dataclass(frozen=True)
class World:
    """What every client acts in: the gateway's answers, the documents, the mitras by uid, the tiers it buys."""

    patient: Patient
    documents: Documents
    mitras: dict[str, Any]
    session_tier: str
    extension_tier: str
    xendit_port: int


class ClientActor(threading.Thread):
    def __init__(self, client: Any, world: World, stop: threading.Event) -> None:
        super().__init__(name=f"client-{client.uid[:6]}", daemon=True)
        self.client = client
        self.mitras = world.mitras
        self.patient = world.patient
        self.record = world.patient.record
        self.documents = world.documents
        self.stop = stop
        self.session_tier, self.extension_tier = world.session_tier, world.extension_tier
        self.xendit_port = world.xendit_port
        self.has_credit = False
        # How many messages each side has sent in the current session, in the order it sent them.
        self.orders = Counter[str]()

    def run(self) -> None:
        time.sleep(random.uniform(0, 10))  # not all at once
        while not self.stop.is_set():
            try:
                self.one_session()
            except Exception:  # a bug in the script, not in the backend: say so and go on
                self.record.failures["script error"] += 1
                traceback.print_exc(file=sys.stderr)
                time.sleep(2)

    def fail(self, step: str, what: str = "") -> None:
        with self.record.lock:
            self.record.failures[step] += 1
            if what:
                self.record.gave_up_on.append(f"{step}: {what} at {datetime.now(UTC):%H:%M:%S}")

    def buy(self, purpose: str, tier_id: str, extension_id: str | None = None) -> str | None:
        body: dict[str, Any] = {"tier_id": tier_id, "purpose": purpose}
        if extension_id:
            body["extension_id"] = extension_id
        opened = self.patient.call(self.client.app, "billing_checkout", body, key=f"buy-{uuid.uuid4().hex}")
        if opened is None or opened.status != 200:
            self.fail(f"checkout {purpose} ({getattr(opened, 'error_code', None) or 'no answer'})")
            return None
        transaction_id = str(opened.body["transaction_id"])
        invoice = opened.body["invoice_url"].rpartition("/web/")[2]
        for _ in range(10):
            try:
                paid = requests.post(
                    f"http://127.0.0.1:{self.xendit_port}/_standin/invoices/{invoice}/pay", json={}, timeout=10
                )
            except requests.RequestException:
                time.sleep(1)
                continue
            if paid.status_code == 200:
                with self.record.lock:
                    self.record.paid[transaction_id] = purpose
                break
            time.sleep(1)
        else:
            self.fail("pay on xendit")
            return None
        landed = self.documents.wait(f"payments/{transaction_id}", lambda d: d.get("status") == "paid", 90)
        if landed is None:
            self.fail(f"payment {purpose} never landed", transaction_id)
            return None
        return transaction_id

    def one_session(self) -> None:
        if not self.has_credit:
            if self.buy("session", self.session_tier) is None:
                return
            self.has_credit = True
        asked = self.patient.call(
            self.client.app, "pairing_request", {"tier_id": self.session_tier}, key=f"ask-{uuid.uuid4().hex}"
        )
        if asked is None or asked.status != 200:
            code = getattr(asked, "error_code", None)
            if code == "payment_required":
                self.has_credit = False
            self.fail(f"pairing_request ({code or 'no answer'})")
            time.sleep(3)
            return
        request_id = str(asked.body["request_id"])
        if asked.body["status"] != "searching":
            time.sleep(random.uniform(2, 5))  # no mitra free now: the credit is back, ask again later
            return
        outcome = self.documents.wait(
            f"pairing_requests/{request_id}",
            lambda d: d.get("status") != "searching",
            SETTINGS["pairing_search_window_s"] + 60,
        )
        if outcome is None or outcome.get("status") != "matched":
            if outcome is None:
                self.fail("request never ended")
            time.sleep(random.uniform(1, 4))
            return
        self.has_credit = False
        session_id = str(outcome["session_id"])
        session = self.documents.wait(f"sessions/{session_id}", lambda d: "mitra_uid" in d, 60)
        if session is None:
            self.fail("session document never came")
            return
        with self.record.lock:
            self.record.sessions[session_id] = self.client.uid
        mitra = self.mitras.get(str(session["mitra_uid"]))
        if mitra is None:
            self.fail("matched to an unknown mitra")
            return
        from emulators.simulator import App

        mitra_app = App(self.client.app.functions_url, mitra.app.session)
        self.orders = Counter[str]()
        self.chat(session_id, mitra_app, mitra.uid, random.randint(4, 10))
        if random.random() < 0.5:
            self.extend(session_id, mitra_app)
            self.chat(session_id, mitra_app, mitra.uid, random.randint(2, 5))
        if random.random() < 0.5:
            self.patient.call(self.client.app, "session_end", {"session_id": session_id})
        closed = self.documents.wait(
            f"sessions/{session_id}", lambda d: d.get("status") == "closed", SESSION_S + EXTENSION_S + 120
        )
        if closed is None:
            self.fail("session never closed (seen by the client)", session_id)

    def chat(self, session_id: str, mitra_app: Any, mitra_uid: str, count: int) -> None:
        orders = self.orders
        for n in range(count):
            if self.stop.is_set() and n > 2:
                return
            app, uid = (self.client.app, self.client.uid) if n % 2 == 0 else (mitra_app, mitra_uid)
            client_message_id = str(uuid.uuid4())
            body = {"session_id": session_id, "client_message_id": client_message_id, "text": f"pesan {n} {uid[:4]}"}
            reply = self.patient.call(app, "chat_send", body)
            if reply is None:
                self.fail("chat_send no answer")
                return
            if reply.status != 200:
                return  # the session ended (409 session_not_active): the chat is over
            with self.record.lock:
                self.record.sent.append(Sent(session_id, str(reply.body["message_id"]), uid, orders[uid]))
            orders[uid] += 1
            time.sleep(random.uniform(1.0, 2.5))

    def extend(self, session_id: str, mitra_app: Any) -> None:
        asked = self.patient.call(
            self.client.app, "extension_request", {"session_id": session_id, "tier_id": self.extension_tier}
        )
        extension_id: str | None = None
        if asked is not None and asked.status == 200:
            extension_id = str(asked.body["extension_id"])
        elif asked is not None and asked.error_code == "extension_pending":  # our first try landed, its reply did not
            doc = self.documents.get(f"sessions/{session_id}") or {}
            extension_id = (doc.get("extension") or {}).get("extension_id")
        if extension_id is None:
            return
        answered = self.patient.call(mitra_app, "extension_respond", {"extension_id": extension_id, "accept": True})
        if answered is None or answered.status not in (200, 409):
            self.fail("extension_respond")
            return
        before = (self.documents.get(f"sessions/{session_id}") or {}).get("version", 1)
        if self.buy("extension", self.extension_tier, extension_id) is None:
            return
        moved = self.documents.wait(f"sessions/{session_id}", lambda d: d.get("version", 1) > before, 60)
        if moved is None:
            status = ((self.documents.get(f"sessions/{session_id}") or {}).get("extension") or {}).get("status")
            if status != "void":  # void: the session ended first, and the money became a credit
                self.fail("paid extension never applied (seen by the client)")


# -- chaos ----------------------------------------------------------------------------------------------------------


def chaos(stack: Any, record: Record, until: float, stop: threading.Event, say: Callable[[str], None]) -> None:
    rng = random.Random()
    stop.wait(rng.uniform(10, 20))
    turn: list[str] = []
    while not stop.is_set() and time.monotonic() < until:
        if not turn:  # every part in each round, in a random order
            turn = rng.sample(PARTS, len(PARTS))
        part = turn.pop()
        down_s = rng.uniform(0.5, 3.0)
        down_at = time.time()
        try:
            stack.blip(part, down_s)
        except Exception as exc:  # a part that does not come back is itself a finding
            say(f"!! {part} did not come back: {exc}")
            stack.restart(part)
        up_at = time.time()
        with record.lock:
            record.outages.append(Outage(part, down_at, up_at))
        say(f"chaos: {part} down {up_at - down_at:.1f}s")
        stop.wait(rng.uniform(10, 25))


# -- the invariants ---------------------------------------------------------------------------------------------------


@dataclass
class Findings:
    figures: dict[str, int] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, found: list[str]) -> None:
        self.figures[name] = len(found)
        self.details[name] = found[:10]


@dataclass(frozen=True)
class Facts:
    """What PostgreSQL says at the end, read in one transaction."""

    double_offers: list[dict[str, Any]]
    session_of_request: dict[str, dict[str, Any]]
    stored: dict[str, dict[str, Any]]
    seqs: list[dict[str, Any]]
    transactions: dict[str, dict[str, Any]]
    lengths: list[dict[str, Any]]
    lost_credits: list[dict[str, Any]]
    closings: list[dict[str, Any]]
    offers_left: list[dict[str, Any]]
    matched: set[str]
    mitra_uids: list[str]


def read_facts(db: Any, record: Record) -> Facts:
    with db.transaction() as tx:
        return Facts(
            double_offers=tx.all(
                """SELECT request_id::text FROM pairing_offers WHERE status = 'accepted'
                   GROUP BY request_id HAVING count(*) > 1"""
            ),
            session_of_request={
                row["request_id"]: row
                for row in tx.all(
                    """SELECT s.request_id::text, s.id::text AS session_id, m.firebase_uid AS mitra_uid
                       FROM sessions s JOIN mitras m ON m.id = s.mitra_id"""
                )
            },
            stored={
                row["id"]: row
                for row in tx.all(
                    """SELECT id::text, session_id::text, seq FROM chat_messages
                       WHERE id = ANY(CAST(:ids AS uuid[]))""",
                    {"ids": [sent.message_id for sent in record.sent]},
                )
            },
            seqs=tx.all(
                """SELECT session_id::text, array_agg(seq ORDER BY seq) AS seqs FROM chat_messages
                   WHERE session_id = ANY(CAST(:s AS uuid[])) GROUP BY session_id""",
                {"s": list(record.sessions)},
            ),
            transactions={
                row["id"]: row
                for row in tx.all(
                    """SELECT t.id::text, t.purpose, t.status, e.status AS extension_status, c.status AS credit,
                              (SELECT count(*) FROM ledger_entries l
                               WHERE l.transaction_id = t.id AND l.kind = 'payment_received') AS payments
                       FROM customer_transactions t
                       LEFT JOIN session_extensions e ON e.id = t.extension_id
                       LEFT JOIN session_credits c ON c.transaction_id = t.id"""
                )
            },
            lengths=tx.all(
                """SELECT s.id::text, extract(epoch FROM s.ends_at - s.started_at) AS length,
                          r.duration_s + coalesce((SELECT sum(e.duration_s) FROM session_extensions e
                                                   WHERE e.session_id = s.id AND e.status = 'applied'), 0) AS bought
                   FROM sessions s JOIN pairing_requests r ON r.id = s.request_id"""
            ),
            lost_credits=tx.all(
                """SELECT c.transaction_id::text, c.status FROM session_credits c
                   WHERE (c.status = 'reserved' AND NOT EXISTS (
                            SELECT 1 FROM pairing_requests r WHERE r.transaction_id = c.transaction_id
                            AND r.status = 'searching'))
                      OR (c.status = 'consumed' AND NOT EXISTS (
                            SELECT 1 FROM pairing_requests r JOIN sessions s ON s.request_id = r.id
                            WHERE r.transaction_id = c.transaction_id))"""
            ),
            closings=tx.all(
                """SELECT s.id::text, s.status, s.ends_at, s.closing_at, s.goodbye_until, s.closed_at,
                          (SELECT reason FROM session_closures x
                           WHERE x.session_id = s.id AND x.reason <> 'rerouted') AS reason
                   FROM sessions s"""
            ),
            offers_left=tx.all(
                """SELECT o.request_id::text, m.firebase_uid FROM pairing_offers o
                   JOIN pairing_requests r ON r.id = o.request_id JOIN mitras m ON m.id = o.mitra_id
                   WHERE o.status = 'offered' AND r.status <> 'searching'"""
            ),
            matched={row["id"] for row in tx.all("SELECT id::text FROM pairing_requests WHERE status = 'matched'")},
            mitra_uids=[
                row["firebase_uid"] for row in tx.all("SELECT firebase_uid FROM mitras WHERE firebase_uid IS NOT NULL")
            ],
        )


def check(db: Any, record: Record, documents: Documents, functions_url: str, clients: dict[str, Any]) -> Findings:
    facts = read_facts(db, record)
    by_session: dict[str, list[Sent]] = {}
    for sent in record.sent:
        by_session.setdefault(sent.session_id, []).append(sent)
    projected = {session_id: documents.collection(f"sessions/{session_id}/messages") for session_id in by_session}
    found = Findings()
    found.add("double matches", double_matches(facts, record))
    from emulators.simulator import App

    def history(session_id: str) -> dict[str, int]:
        """The session's history, read by its client as the app pages through it."""
        return _history(App(functions_url, clients[record.sessions[session_id]].app.session), session_id)

    found.add("lost messages", lost_messages(facts, by_session, projected, history))
    found.add("messages out of order", out_of_order(facts, by_session, projected))
    found.add("payments applied twice or not at all", payments_wrong(facts, record))
    found.add("credits lost", [f"{row['transaction_id']} {row['status']}" for row in facts.lost_credits])
    late, lateness = late_closings(facts, record.outages)
    found.add("sessions not closed within 2 s once everything is back", late)
    found.add("offers left for matched requests", offers_left(facts, documents))
    found.figures["(expiry lateness, max s, outages included)"] = round(max(lateness, default=0.0))
    behind = projections_behind(db, record, documents)
    found.figures["(Firestore documents disagreeing with PostgreSQL)"] = len(behind)
    found.details["(Firestore documents disagreeing with PostgreSQL)"] = behind[:10]
    return found


def projections_behind(db: Any, record: Record, documents: Documents) -> list[str]:
    """Not an invariant of the issue, but what the apps would see: every paid transaction's `payments/{id}` and
    every session's `sessions/{id}` saying what PostgreSQL says once everything is back."""
    with db.transaction() as tx:
        payments = tx.all(
            "SELECT id::text, status FROM customer_transactions WHERE id = ANY(CAST(:ids AS uuid[]))",
            {"ids": list(record.paid)},
        )
        sessions = tx.all(
            "SELECT id::text, status, version, ends_at FROM sessions WHERE id = ANY(CAST(:ids AS uuid[]))",
            {"ids": list(record.sessions)},
        )
    behind: list[str] = []
    for row in payments:
        doc = documents.get(f"payments/{row['id']}") or {}
        if doc.get("status") != row["status"]:
            behind.append(f"payments/{row['id']}: {doc.get('status')}, {row['status']} in PostgreSQL")
    for row in sessions:
        doc = documents.get(f"sessions/{row['id']}") or {}
        said = (doc.get("status"), doc.get("version"), doc["ends_at"].timestamp() if "ends_at" in doc else None)
        truth = (row["status"], row["version"], row["ends_at"].timestamp())
        if said[:2] != truth[:2] or said[2] is None or abs(said[2] - truth[2]) > 0.001:
            behind.append(f"sessions/{row['id']}: {said[:2]}, {truth[:2]} in PostgreSQL")
    return behind


def double_matches(facts: Facts, record: Record) -> list[str]:
    """Two mitras told they won one request, a mitra told it won a session that is not its own, or one request's
    offers accepted twice."""
    doubles = [f"offers accepted twice: {row['request_id']}" for row in facts.double_offers]
    for request_id, winners in record.accepted.items():
        if len(winners) > 1:
            doubles.append(f"{len(winners)} mitras told they won {request_id}")
        session = facts.session_of_request.get(request_id)
        if session is None or any(uid != session["mitra_uid"] for uid in winners):
            doubles.append(f"a mitra told it won {request_id}, whose session is not theirs")
    return doubles


def lost_messages(
    facts: Facts,
    by_session: dict[str, list[Sent]],
    projected: dict[str, dict[str, dict[str, Any]]],
    histories: Callable[[str], dict[str, int]],
) -> list[str]:
    """Answered 200, but missing from PostgreSQL, from Firestore, or from the history the apps page through."""
    lost: list[str] = []
    for session_id, messages in by_session.items():
        history = histories(session_id)
        for sent in messages:
            where = [
                name
                for name, found in (
                    ("PostgreSQL", sent.message_id in facts.stored),
                    ("Firestore", sent.message_id in projected[session_id]),
                    ("chat_history", sent.message_id in history),
                )
                if not found
            ]
            if where:
                lost.append(f"{sent.message_id} not in {', '.join(where)}")
    return lost


def out_of_order(
    facts: Facts, by_session: dict[str, list[Sent]], projected: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """Each sender's messages keep the order it sent them in; seq has no gap or repeat; Firestore has PostgreSQL's
    seq."""
    disorder: list[str] = []
    for session_id, messages in by_session.items():
        for uid in {m.sender_uid for m in messages}:
            mine = sorted((m for m in messages if m.sender_uid == uid), key=lambda m: m.order)
            order = [facts.stored[m.message_id]["seq"] for m in mine if m.message_id in facts.stored]
            if order != sorted(order):
                disorder.append(f"{session_id}: {uid[:6]} sent in one order, stored as {order}")
        for m in messages:
            doc, row = projected[session_id].get(m.message_id), facts.stored.get(m.message_id)
            if doc is not None and row is not None and doc.get("seq") != row["seq"]:
                disorder.append(f"{m.message_id}: seq {doc.get('seq')} in Firestore, {row['seq']} in PostgreSQL")
    for row in facts.seqs:
        if list(row["seqs"]) != list(range(1, len(row["seqs"]) + 1)):
            disorder.append(f"{row['session_id']}: seq {row['seqs']}")
    return disorder


def payments_wrong(facts: Facts, record: Record) -> list[str]:
    """Paid on Xendit but not paid here, paid twice, paid for a session without a credit, an extension paid for but
    neither applied nor turned into a credit; a session longer or shorter than what was bought."""
    wrong: list[str] = []
    for transaction_id, purpose in record.paid.items():
        row = facts.transactions.get(transaction_id)
        if row is None or row["status"] != "paid":
            wrong.append(f"{transaction_id} paid on Xendit, {row['status'] if row else 'unknown'} here")
        elif row["payments"] != 1:
            wrong.append(f"{transaction_id}: {row['payments']} payment ledger rows")
        elif purpose == "session" and row["credit"] is None:
            wrong.append(f"{transaction_id}: paid for a session, no credit")
        elif purpose == "extension" and row["extension_status"] != "applied" and row["credit"] is None:
            wrong.append(f"{transaction_id}: paid extension {row['extension_status']}, and no credit instead")
    for row in facts.lengths:
        if abs(float(row["length"]) - float(row["bought"])) > 0.01:
            wrong.append(f"session {row['id']} lasts {row['length']}s, {row['bought']}s were bought")
    return wrong


def late_closings(facts: Facts, outages: list[Outage]) -> tuple[list[str], list[float]]:
    """Sessions not closed at all, or expired (or closed after their goodbye window) more than 2 s late when no
    outage was near: and every expiry's lateness, outages included."""
    late: list[str] = []
    lateness: list[float] = []
    for row in facts.closings:
        if row["status"] != "closed":
            late.append(f"{row['id']} still {row['status']}")
            continue
        if row["reason"] == "expired":
            behind = (row["closing_at"] - row["ends_at"]).total_seconds()
            lateness.append(behind)
            if behind > LATE_S and in_the_clear(row["ends_at"], outages):
                late.append(f"{row['id']} expired {behind:.1f}s after ends_at")
        if row["goodbye_until"] is not None:
            behind = (row["closed_at"] - row["goodbye_until"]).total_seconds()
            if behind > LATE_S and in_the_clear(row["goodbye_until"], outages):
                late.append(f"{row['id']} closed {behind:.1f}s after its goodbye window")
    return late, lateness


def offers_left(facts: Facts, documents: Documents) -> list[str]:
    left = [f"{row['request_id']} offered to {row['firebase_uid'][:6]}" for row in facts.offers_left]
    for uid in facts.mitra_uids:
        for request_id in documents.collection(f"mitras/{uid}/offers"):
            if request_id in facts.matched:
                left.append(f"mitras/{uid[:6]}/offers/{request_id} (matched)")
    return left


def in_the_clear(at: datetime, outages: list[Outage]) -> bool:
    moment = at.timestamp()
    return all(not (o.down_at - CLEAR_BEFORE_S <= moment <= o.up_at + CLEAR_AFTER_S) for o in outages)


def _history(app: Any, session_id: str) -> dict[str, int]:
    seen: dict[str, int] = {}
    before: int | None = None
    for _ in range(100):
        query: dict[str, Any] = {"session_id": session_id, "limit": 100}
        if before is not None:
            query["before"] = before
        page = app.get("chat_history", **query)
        if page.status != 200:
            raise RuntimeError(f"chat_history {session_id}: {page.status} {page.body}")
        seen.update({m["message_id"]: m["seq"] for m in page.body["messages"]})
        before = page.body["next_before"]
        if before is None:
            return seen
    return seen


# -- the run ----------------------------------------------------------------------------------------------------------


def main() -> int:
    minutes = _env_number("SOAK_MINUTES", 5)
    client_count = int(_env_number("SOAK_CLIENTS", 60))
    mitra_count = int(_env_number("SOAK_MITRAS", 15))
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    from emulators.stack import gcloud_emulators, start_on_free_ports

    if gcloud_emulators() is None:
        print("soak skipped: the Google Cloud CLI's Firestore/Pub/Sub emulators are not installed", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="halo-soak-"))
    say(f"starting the stack in {state}")
    # One gateway stands in for a service per function, each scaling on its own: it gets threads (and connections)
    # enough that a slow dependency holding some requests does not queue every other function's behind them.
    stack = start_on_free_ports(
        state, tick_s=2.0, identity_cache_s=5.0, progress=lambda line: say(f"  {line}"), gateway_threads=48
    )
    try:
        os.environ.update(stack.env())
        from shared.config import get_settings

        get_settings.cache_clear()
        figures = run(stack, minutes, client_count, mitra_count, say)
    finally:
        stack.stop()
        if not os.environ.get("HALO_SOAK_KEEP"):
            shutil.rmtree(state, ignore_errors=True)
    write_report(figures)
    say(f"written to {_report.REPORT}")
    return 0


def run(stack: Any, minutes: float, client_count: int, mitra_count: int, say: Callable[[str], None]) -> str:
    from concurrent.futures import ThreadPoolExecutor

    from emulators.simulator import AuthEmulator, Client, Mitra
    from emulators.stack import DATABASE
    from shared.adapters.postgres.database import Database
    from tests.support import people

    db = Database(lambda: stack.postgres.connect(DATABASE), max_idle=2, ping_after_s=0.5)
    auth = AuthEmulator(f"http://127.0.0.1:{stack.ports.auth}")
    people.Settings(db).change(**SETTINGS)
    tiers = (people.add_tier(db, SESSION_S, 5000, prefix="soak"), people.add_tier(db, EXTENSION_S, 2000, prefix="soak"))
    record = Record()
    stop_clients, stop_chaos, stop_mitras = threading.Event(), threading.Event(), threading.Event()
    documents = Documents()

    def new_mitra(n: int) -> Any:
        phone = f"+62819{uuid.uuid4().int % 10**8:08d}"
        with db.transaction() as tx:
            tx.execute("INSERT INTO mitras (phone, display_name) VALUES (:p, :n)", {"p": phone, "n": f"Mitra {n}"})
        mitra = Mitra.sign_in(auth, stack.functions_url, phone)
        mitra.online()
        mitra.keep_alive(every_s=20)
        return mitra

    with ThreadPoolExecutor(6) as pool:
        mitras = list(pool.map(new_mitra, range(mitra_count)))
        clients = list(pool.map(lambda n: Client.sign_up(auth, stack.functions_url, f"Klien {n}"), range(client_count)))
    say(f"{len(clients)} clients and {len(mitras)} mitras signed in; tiers {tiers}")
    world = World(
        Patient(record, stop_clients), documents, {m.uid: m for m in mitras}, *tiers, xendit_port=stack.ports.xendit
    )
    mitra_actors = [MitraActor(mitra, Patient(record, stop_mitras), documents, stop_mitras) for mitra in mitras]
    client_actors = [ClientActor(client, world, stop_clients) for client in clients]
    for actor in (*mitra_actors, *client_actors):
        actor.start()
    until = time.monotonic() + minutes * 60
    chaos_thread = threading.Thread(
        target=chaos, args=(stack, record, until, stop_chaos, say), name="chaos", daemon=True
    )
    chaos_thread.start()
    while time.monotonic() < until:
        time.sleep(min(30.0, max(0.0, until - time.monotonic())))
        with record.lock:
            progress = (len(record.sessions), len(record.sent), len(record.paid), len(record.outages))
        say("sessions {}, messages {}, payments {}, restarts {}".format(*progress))
    stop_chaos.set()
    chaos_thread.join()
    say("time is up: no more restarts; the clients finish their sessions")
    stop_clients.set()
    drain_until = time.monotonic() + SESSION_S + EXTENSION_S + 180
    for actor in client_actors:
        actor.join(max(0.0, drain_until - time.monotonic()))
    unfinished = sum(actor.is_alive() for actor in client_actors)
    stop_mitras.set()
    for mitra in mitras:
        mitra.stop_heartbeat()
    time.sleep(15)  # the last timers and the outbox sweep
    say(f"checking the invariants ({unfinished} clients still busy)")
    findings = check(db, record, documents, stack.functions_url, {c.uid: c for c in clients})
    db.close()
    shape = f"{client_count} clients, {mitra_count} mitras, {minutes:g} minutes"
    return render(findings, record, shape, unfinished)


def render(findings: Findings, record: Record, shape: str, unfinished: int) -> str:
    restarts = Counter(o.part for o in record.outages)
    calls = Counter[str]()
    for (_, status), count in record.statuses.items():
        calls[status] += count
    lines = [
        f"{shape}; run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        f"restarts: {len(record.outages)} ({', '.join(f'{part} {n}' for part, n in sorted(restarts.items()))}); "
        f"longest outage {max((o.up_at - o.down_at for o in record.outages), default=0):.1f}s",
        f"activity: {len(record.sessions)} sessions, {len(record.sent)} messages answered 200, "
        f"{len(record.paid)} invoices paid ({sum(p == 'extension' for p in record.paid.values())} extensions)",
        f"calls by answer: {', '.join(f'{status} {n}' for status, n in sorted(calls.items()))}",
        f"server errors (500 and 5xx other than 503): {len(record.server_errors)}",
        f"flows a client gave up on: {dict(record.failures) or 0}; clients still busy at the check: {unfinished}",
        "",
        "| invariant | found (goal 0) |",
        "| --- | --- |",
        *(f"| {name} | {count} |" for name, count in findings.figures.items()),
    ]
    for name, examples in findings.details.items():
        if examples:
            lines += ["", f"{name}, first {len(examples)}:", *(f"  {example}" for example in examples)]
    for error in record.server_errors[:10]:
        lines.append(f"  server error: {error}")
    for given_up in record.gave_up_on[:10]:
        lines.append(f"  gave up on {given_up}")
    return "\n".join(lines)


def write_report(figures: str) -> None:
    """The `soak` section of bench/REPORT.md, replaced (the rest of the report is `make bench`'s)."""
    section = _report.section("soak", figures)
    _report.write_section("soak", section)
    print(f"\n{section}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
