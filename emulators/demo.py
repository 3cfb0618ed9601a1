"""`make demo`: the whole job of Halo Bestie, narrated, against the running `make dev` stack.

Everything goes the way the apps go: sign-ins through the Firebase Auth emulator, every action through the real
functions on the gateway, every reaction seen on a Firestore listener, payment on the Xendit stand-in's page and
Xendit's callback to our webhook, timers fired by the Cloud Tasks emulator. A fresh client each run; the seeded
mitras go offline again at the end and the settings the demo shortens are put back, so it can run again at once.

    python -m emulators.demo [--functions-url URL] [--auth-url URL] [--firestore-host HOST:PORT] [--postgres-port N]

Defaults come from firebase.json. Only two things are done behind the apps' back, as an admin would: two demo
pricing tiers lasting seconds (the control center only sells whole minutes) are written to PostgreSQL, and the
goodbye window and warning lead are shortened through `admin_config` for the length of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from emulators.seed import ADMIN_EMAIL, ADMIN_PASSWORD, MITRAS
from emulators.simulator import (
    App,
    AuthEmulator,
    Client,
    Mitra,
    Reply,
    SimulatorError,
    Watch,
    expect_ok,
    wait_for_one,
)
from emulators.stack import DATABASE, StackPorts
from functions.manifest import BY_NAME

# The demo's tiers, in seconds so the whole story fits in well under a minute.
SESSION_TIER = ("demo-20s", 20, 5_000)
EXTENSION_TIER = ("demo-ext-20s", 20, 3_000)
# Shortened for the run, then restored: goodbyes for 5 s, the "time is almost up" warning 12 s before the end.
DEMO_SETTINGS = {"goodbye_window_s": 5, "session_warning_s": 12}


@dataclass(frozen=True)
class Scene:
    """One session as both apps hold it: each side's listeners on the session document and its messages."""

    client: Client
    mitra: Mitra
    session_id: str
    client_session: Watch
    mitra_session: Watch
    client_messages: Watch
    mitra_messages: Watch


def default_setting(key: str) -> Any:
    from shared.domain.config import AppConfig

    return AppConfig.model_fields[key].default


def idr(amount: int) -> str:
    return f"IDR {amount:,}".replace(",", ".")


def seconds_until(moment: datetime) -> float:
    return (moment - datetime.now(UTC)).total_seconds()


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Narrator:
    """One line per step: elapsed time, who acts or notices, what happened."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, who: str, text: str) -> None:
        with self._lock:
            print(f"[{self.elapsed:5.1f}s] {who:<15} {text}", flush=True)

    def section(self, title: str) -> None:
        with self._lock:
            print(f"\n── {title} " + "─" * max(0, 100 - len(title)), flush=True)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.say = Narrator()
        self.auth = AuthEmulator(args.auth_url)
        self.admin: App | None = None
        self.mitras: list[Mitra] = []
        self.client: Client | None = None
        self.request_id: str | None = None
        self.session_id: str | None = None
        self.watches: list[Watch] = []
        # The mitras with room for one more client: a stack used before may hold sessions that keep one at capacity.
        self.with_room: list[Mitra] = []
        self.saved_settings: dict[str, Any] | None = None
        self.tiers_added = False

    # -- the story ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.section("Control center")
        self.admin_signs_in()
        self.end_leftover_sessions()
        self.dashboard("before")
        self.prepare()
        self.section("Mitras come online")
        offers = self.mitras_come_online()
        self.with_room = self.mitras_with_room()
        self.section("A client signs up and pays")
        client = self.client_signs_up()
        self.buy(client, SESSION_TIER, "session")
        self.section('"Mulai Curhat": the offer goes to every mitra, the first to accept wins')
        request_id, request = self.tap_mulai_curhat(client)
        self.offers_arrive(offers, request_id)
        winner, session_id = self.race(request_id, request, offers)
        self.session_id = session_id
        self.section("The session: chat, receipts, typing")
        scene = Scene(
            client,
            winner,
            session_id,
            client_session=self.keep(client.watch_session(session_id)),
            mitra_session=self.keep(winner.watch_session(session_id)),
            client_messages=self.keep(client.watch_messages(session_id)),
            mitra_messages=self.keep(winner.watch_messages(session_id)),
        )
        ends_at = self.session_starts(scene)
        self.conversation(scene)
        self.section("Time is almost up: warning, extension, early end, goodbyes")
        self.warning(scene, ends_at)
        self.extension(scene, ends_at)
        self.early_end_and_goodbyes(scene)
        self.section("Afterwards")
        self.transcript(scene)
        self.feedback(scene)
        self.dashboard("after")
        self.section("The control center ends a session: an admin steps in")
        self.admin_ends_a_session(client, offers)

    def admin_signs_in(self) -> None:
        session = self.auth.sign_in_with_email(ADMIN_EMAIL, ADMIN_PASSWORD)
        self.admin = App(self.args.functions_url, session)
        self.say.say("admin", f"{ADMIN_EMAIL} signs in (email/password, role claim '{session.claims.get('role')}')")

    def end_leftover_sessions(self) -> None:
        """Sessions of the seeded mitras left open by an earlier run (interrupted, or a stack kept across restarts)
        are ended by the admin at once (`admin_session_end`, no goodbye window), so every mitra has room again."""
        assert self.admin is not None
        with self.database() as tx:
            rows = tx.all("SELECT id::text FROM mitras WHERE phone = ANY(:phones)", {"phones": [p for p, _ in MITRAS]})
        leftovers = []
        for row in rows:
            for status in ("active", "closing"):
                listed = self.admin.get("admin_sessions", status=status, mitra_id=row["id"], limit=200)
                if listed.status != 200:
                    raise RuntimeError(f"admin_sessions: HTTP {listed.status} {listed.body}")
                leftovers += [s["session_id"] for s in listed.body["sessions"]]
        for session_id in leftovers:
            body = {"session_id": session_id, "reason": "demo: left open by an earlier run", "goodbye": False}
            ended = self.admin.post("admin_session_end", {**body, "credit_unused": False})
            if ended.status not in (200, 409):  # 409: it closed on its own meanwhile
                raise RuntimeError(f"admin_session_end: HTTP {ended.status} {ended.body}")
        if leftovers:
            self.say.say("admin", f"admin_session_end: {len(leftovers)} session(s) left open by earlier runs closed")

    def admin_ends_a_session(self, client: Client, offers: dict[str, Watch]) -> None:
        """A second paid session; an admin ends it at once (say, the mitra has to hand over a crisis) and credits the
        unused time back: both apps see `closed` with `close_reason: admin`, the client's quote shows the credit."""
        assert self.admin is not None
        self.buy(client, SESSION_TIER, "session")
        request_id, _ = self.tap_mulai_curhat(client)
        mitra = self.with_room[0]
        wait_for_one(offers[mitra.uid], lambda doc: doc.get("request_id") == request_id)
        accepted = mitra.accept(request_id)
        if accepted.status != 200:
            raise RuntimeError(f"pairing_accept: HTTP {accepted.status} {accepted.body}")
        session_id = self.session_id = str(accepted.body["session_id"])
        client_session = self.keep(client.watch_session(session_id))
        mitra_session = self.keep(mitra.watch_session(session_id))
        wait_for_one(client_session, lambda doc: doc.get("status") == "active")
        self.say.say(mitra.name, f"pairing_accept → session {session_id[:8]}…, active")
        body = {"session_id": session_id, "reason": "crisis hand-off to the on-duty counsellor", "goodbye": False}
        ended = self.admin.post("admin_session_end", {**body, "credit_unused": True}, idempotency_key=str(uuid.uuid4()))
        if ended.status != 200:
            raise RuntimeError(f"admin_session_end: HTTP {ended.status} {ended.body}")
        self.say.say(
            "admin",
            f"admin_session_end (reason given, no goodbye window, credit_unused) → {ended.body['status']}, "
            f"{ended.body['credited_s']} s unused credited back ({idr(ended.body['credited_amount'])})",
        )
        for who, watch in (("client", client_session), (mitra.name, mitra_session)):
            closed = wait_for_one(watch, lambda doc: doc.get("status") == "closed")
            self.say.say(who, f"listener: closed, close_reason '{closed['close_reason']}'")
        quote = client.quote()
        mine = next((c for c in quote.get("credited_back", []) if c["session_id"] == session_id), None)
        self.say.say(
            "client",
            "pricing_quote: "
            + (f"credited back {mine['unused_s']} s ({idr(mine['amount'])})" if mine else "no credit shown (!)")
            + f"; balance {idr(quote.get('credit_back_balance', 0))}, spent by the next billing_checkout",
        )
        audited = self.admin.get("admin_audit", target=session_id)
        actions = [entry["action"] for entry in audited.body.get("entries", [])] if audited.status == 200 else []
        self.say.say("admin", f"admin_audit target={session_id[:8]}… → {actions}")

    def dashboard(self, when: str) -> None:
        if "admin_dashboard" not in BY_NAME:
            self.say.say("admin", f"dashboard {when}: admin_dashboard is not available in this build")
            return
        assert self.admin is not None
        reply = self.admin.get("admin_dashboard")
        if reply.status != 200:
            self.say.say("admin", f"dashboard {when}: admin_dashboard not available (HTTP {reply.status})")
            return
        board = reply.body
        mitras, requests_today, revenue = board["mitras"], board["requests_today"], board["revenue_today"]
        wait = board.get("median_wait_s_today")
        self.say.say(
            "admin",
            f"admin_dashboard {when}: {mitras['online']}/{mitras['active']} mitras online, {mitras['busy']} busy · "
            f"{board['clients_searching']} searching · {board['active_sessions']} sessions active · today: "
            f"{board['sessions_today']} sessions, {requests_today['matched']}/{requests_today['total']} requests "
            f"matched, median wait {'-' if wait is None else f'{wait:.1f} s'}, revenue {idr(revenue['amount'])}",
        )

    def prepare(self) -> None:
        """As an admin would: two short demo tiers, and a short goodbye window and warning lead for this run."""
        self.add_demo_tiers()
        tiers = ", ".join(
            f"{tier_id} ({seconds} s, {idr(price)})" for tier_id, seconds, price in (SESSION_TIER, EXTENSION_TIER)
        )
        self.say.say("admin", f"adds demo tiers {tiers} in PostgreSQL")
        self.saved_settings = self.read_settings()
        how = self.write_settings(DEMO_SETTINGS)
        self.say.say(
            "admin",
            f"goodbye window {DEMO_SETTINGS['goodbye_window_s']} s, warning {DEMO_SETTINGS['session_warning_s']} s "
            f"before the end, via {how} (restored at the end)",
        )

    def mitras_come_online(self) -> dict[str, Watch]:
        offers: dict[str, Watch] = {}
        for phone, _ in MITRAS:
            mitra = Mitra.sign_in(self.auth, self.args.functions_url, phone)
            self.mitras.append(mitra)
            offers[mitra.uid] = self.keep(mitra.watch_offers())
            status = mitra.online()
            mitra.keep_alive(every_s=20)
            self.say.say(
                mitra.name,
                f"signs in by phone OTP ({phone}), mitra_login ok, "
                f"{'goes online' if status['changed'] else 'already online'}; listens on its offers",
            )
        return offers

    def client_signs_up(self) -> Client:
        email = f"sari.{uuid.uuid4().hex[:6]}@example.com"
        client = self.client = Client.sign_up(self.auth, self.args.functions_url, "Sari", email)
        role = client.app.session.claims.get("role") if client.app.session else None
        self.say.say(
            "client",
            f"signs in with Google ({email}), client_register, token refresh → role '{role}'; "
            f"mitras will see '{client.profile.get('alias')}'",
        )
        quote = client.quote()
        tiers = quote.get("tiers", [])
        demo = next(tier for tier in tiers if tier.get("id") == SESSION_TIER[0])
        self.say.say(
            "client",
            f"pricing_quote: {len(tiers)} tiers, among them {demo['id']} ({demo['duration_s']} s, "
            f"{idr(demo['price'])}); free trial available: {quote.get('free_trial', {}).get('available')}",
        )
        return client

    def buy(self, client: Client, tier: tuple[str, int, int], purpose: str, extension_id: str | None = None) -> None:
        """Checkout, pay on Xendit's page, and wait on `payments/{transaction_id}` for the webhook's word."""
        checkout = client.checkout(tier[0], purpose, extension_id)
        transaction_id = checkout["transaction_id"]
        payment = self.keep(Watch.document(f"payments/{transaction_id}"))
        self.say.say("client", f"billing_checkout {tier[0]} ({purpose}) → Xendit invoice {checkout['invoice_url']}")
        client.pay(checkout["invoice_url"])
        self.say.say("client", f"pays {idr(tier[2])} on the invoice page; Xendit calls xendit_webhook back")
        wait_for_one(payment, lambda doc: doc.get("status") == "paid", timeout=15)
        self.say.say("client", f"listener payments/{transaction_id[:8]}… → paid")

    def tap_mulai_curhat(self, client: Client) -> tuple[str, Watch]:
        reply = client.request(SESSION_TIER[0])
        self.request_id = request_id = reply["request_id"]
        self.say.say("client", f'taps "Mulai Curhat" (pairing_request {SESSION_TIER[0]}) → {reply["status"]}')
        if reply["status"] != "searching":
            raise RuntimeError(f"expected a search, got {reply}")
        return request_id, self.keep(client.watch_request(request_id))

    def mitras_with_room(self) -> list[Mitra]:
        """The seeded mitras below `max_concurrent_clients` open sessions. One at capacity (sessions left open on a
        stack used before) is offered nothing, as the pairing rule says; the demo goes on with the others."""
        with self.database() as tx:
            rows = tx.all(
                """SELECT m.phone, count(s.id) AS open,
                          (SELECT CAST(value AS integer) FROM app_config WHERE key = 'max_concurrent_clients') AS cap
                   FROM mitras m LEFT JOIN sessions s ON s.mitra_id = m.id AND s.status IN ('active', 'closing')
                   WHERE m.phone = ANY(:phones) GROUP BY m.phone""",
                {"phones": [phone for phone, _ in MITRAS]},
            )
        open_by_phone = {row["phone"]: row["open"] for row in rows}
        cap = next((row["cap"] for row in rows if row["cap"] is not None), default_setting("max_concurrent_clients"))
        with_room = []
        for (phone, _), mitra in zip(MITRAS, self.mitras, strict=True):
            if open_by_phone.get(phone, 0) < cap:
                with_room.append(mitra)
            else:
                self.say.say(
                    mitra.name,
                    f"has {open_by_phone[phone]} sessions still open from earlier use (capacity {cap}): "
                    "gets no offer this run",
                )
        if not with_room:
            raise RuntimeError(
                "every seeded mitra is at capacity with sessions left open by earlier use of this stack; "
                "restart `make dev` (it starts clean), or `make reset` after `make dev KEEP=1`"
            )
        return with_room

    def offers_arrive(self, offers: dict[str, Watch], request_id: str) -> None:
        for mitra in self.with_room:
            offer = wait_for_one(offers[mitra.uid], lambda doc: doc.get("request_id") == request_id)
            self.say.say(
                mitra.name,
                f"listener: offer from '{offer['client_name']}', {offer['duration_s']} s {offer['kind']} session",
            )

    def race(self, request_id: str, request: Watch, offers: dict[str, Watch]) -> tuple[Mitra, str]:
        racers = self.with_room[:2]
        start = threading.Barrier(len(racers))

        def accept(mitra: Mitra) -> tuple[Mitra, Reply]:
            start.wait()
            return mitra, mitra.accept(request_id)

        if len(racers) > 1:
            self.say.say("", f"{' and '.join(m.name for m in racers)} tap Accept at the same moment")
        else:
            self.say.say("", f"{racers[0].name} taps Accept (the only mitra with room)")
        with ThreadPoolExecutor(len(racers)) as pool:
            results = list(pool.map(accept, racers))
        winners = [(mitra, reply) for mitra, reply in results if reply.status == 200]
        if len(winners) != 1:
            raise RuntimeError(f"expected exactly one winner: {[(m.name, r.status, r.body) for m, r in results]}")
        winner, won = winners[0]
        for mitra, reply in results:
            if reply.status == 200:
                self.say.say(mitra.name, f"pairing_accept → 200, session {won.body['session_id'][:8]}…")
            else:
                self.say.say(mitra.name, f"pairing_accept → {reply.status} {reply.error_code}")
        for mitra in self.with_room:
            offers[mitra.uid].wait_for(lambda docs: not any(d.get("request_id") == request_id for d in docs.values()))
            if mitra is not winner:
                self.say.say(mitra.name, "listener: the offer is gone from the list")
        matched = wait_for_one(request, lambda doc: doc.get("status") == "matched")
        self.say.say("client", f"listener: matched with {matched['mitra']['display_name']}")
        return winner, str(won.body["session_id"])

    def session_starts(self, scene: Scene) -> datetime:
        doc = wait_for_one(scene.client_session, lambda d: d.get("status") == "active")
        ends_at: datetime = doc["ends_at"]
        self.say.say(
            "client", f"listener: session active with {scene.mitra.name}, ends in {seconds_until(ends_at):.1f} s"
        )
        return ends_at

    def conversation(self, scene: Scene) -> None:
        client, mitra, session_id = scene.client, scene.mitra, scene.session_id
        client_session, mitra_session = scene.client_session, scene.mitra_session
        client_messages, mitra_messages = scene.client_messages, scene.mitra_messages
        first = client.send(session_id, "Halo kak, aku lagi capek banget sama kerjaan, rasanya nggak ada habisnya.")
        self.say.say("client", f'sends #{first["seq"]} "Halo kak, aku lagi capek banget…" (chat_send)')
        seen = wait_for_one(mitra_messages, lambda doc: doc.get("message_id") == first["message_id"])
        self.say.say(mitra.name, f"listener: message #{seen['seq']} arrived (status {seen['status']})")
        mitra.receipt(session_id, first["message_id"], "delivered")
        self.wait_receipt(client_session, "mitra", "delivered_seq", first["seq"])
        self.say.say("client", f"listener: #{first['seq']} ✓✓ delivered (the mitra app's chat_receipts)")
        mitra.receipt(session_id, first["message_id"], "read")
        self.wait_receipt(client_session, "mitra", "read_seq", first["seq"])
        self.say.say("client", f"listener: #{first['seq']} read by {mitra.name} (chat_receipts read)")
        mitra.typing(session_id, True)
        wait_for_one(client_session, lambda doc: bool(doc.get("typing", {}).get("mitra", {}).get("typing_until")))
        self.say.say("client", f'listener: "{mitra.name} sedang mengetik…" (chat_typing)')
        reply = mitra.send(session_id, "Terima kasih sudah mau cerita. Aku dengerin, bagian mana yang paling berat?")
        mitra.typing(session_id, False)  # writes nothing: the message that just went out already ends the lease
        wait_for_one(client_messages, lambda doc: doc.get("message_id") == reply["message_id"])
        self.say.say(
            "client",
            f'listener: #{reply["seq"]} "Terima kasih sudah mau cerita…", typing indicator off (a message '
            "from the mitra after the typing lease's `since`)",
        )
        client.receipt(session_id, reply["message_id"], "read")
        self.wait_receipt(mitra_session, "client", "read_seq", reply["seq"])
        self.say.say(mitra.name, f"listener: #{reply['seq']} read by the client")
        third = client.send(session_id, "Atasan minta lembur terus, aku jadi susah tidur.")
        wait_for_one(mitra_messages, lambda doc: doc.get("message_id") == third["message_id"])
        self.say.say(mitra.name, f'listener: #{third["seq"]} "Atasan minta lembur terus, aku jadi susah tidur."')

    @staticmethod
    def wait_receipt(watch: Watch, side: str, field: str, seq: int) -> None:
        wait_for_one(watch, lambda doc: doc.get("receipts", {}).get(side, {}).get(field, 0) >= seq)

    def warning(self, scene: Scene, ends_at: datetime) -> None:
        self.say.say("", f"… waiting for the backend's warning ({DEMO_SETTINGS['session_warning_s']} s before the end)")
        warned = wait_for_one(scene.client_messages, lambda doc: doc.get("kind") == "system", timeout=30)
        self.say.say(
            "system",
            f'task_session_warning → system message "{warned["text"]}" ({seconds_until(ends_at):.1f} s left)',
        )

    def extension(self, scene: Scene, ends_at: datetime) -> None:
        client, mitra, session_id = scene.client, scene.mitra, scene.session_id
        client_session, mitra_session = scene.client_session, scene.mitra_session
        tier_id, seconds, price = EXTENSION_TIER
        extension_id = client.request_extension(session_id, tier_id)["extension_id"]
        self.say.say("client", f"asks for +{seconds} s ({tier_id}, {idr(price)}): extension_request")
        asked = wait_for_one(mitra_session, lambda doc: doc.get("extension", {}).get("extension_id") == extension_id)
        self.say.say(mitra.name, f"listener: extension {asked['extension']['status']} → accepts (extension_respond)")
        mitra.respond_extension(extension_id, accept=True)
        wait_for_one(client_session, lambda doc: doc.get("extension", {}).get("status") == "accepted")
        self.say.say("client", "listener: extension accepted, pay to apply it")
        self.buy(client, EXTENSION_TIER, "extension", extension_id)
        moved = wait_for_one(client_session, lambda doc: doc.get("extension", {}).get("status") == "applied")
        new_end: datetime = moved["ends_at"]
        self.say.say(
            "client",
            f"listener: extension applied, version {moved['version']}, ends_at "
            f"+{(new_end - ends_at).total_seconds():.0f} s (now ends in {seconds_until(new_end):.1f} s)",
        )

    def early_end_and_goodbyes(self, scene: Scene) -> None:
        client, mitra, session_id = scene.client, scene.mitra, scene.session_id
        client_session, mitra_session, client_messages = (
            scene.client_session,
            scene.mitra_session,
            scene.client_messages,
        )
        ended = client.end(session_id)
        self.say.say("client", f"ends the session early (session_end) → {ended['status']}")
        closing = wait_for_one(mitra_session, lambda doc: doc.get("status") == "closing")
        self.say.say(
            mitra.name,
            f"listener: closing ({closing['close_reason']}), goodbyes until "
            f"+{seconds_until(closing['goodbye_until']):.1f} s",
        )
        farewells = [
            (mitra, "Terima kasih sudah cerita hari ini. Jaga diri ya, kamu nggak sendiri."),
            (client, "Makasih banyak kak, aku jauh lebih lega."),
        ]
        for who, text in farewells:
            who.goodbye(session_id, text)
            self.say.say(who.name if who is mitra else "client", f'session_goodbye "{short(text, 50)}"')
        wait_for_one(client_messages, lambda doc: doc.get("kind") == "goodbye" and doc.get("sender_role") == "mitra")
        self.say.say("client", "listener: the mitra's goodbye note arrived")
        wait_for_one(client_session, lambda doc: doc.get("status") == "closed", timeout=30)
        self.say.say("system", "task_session_close → closed (the goodbye window is over)")

    def transcript(self, scene: Scene) -> None:
        client, mitra, session_id = scene.client, scene.mitra, scene.session_id
        mine = client.transcript(session_id)
        theirs = mitra.transcript(session_id)
        self.say.say("client", f"session_transcript: {len(mine['messages'])} messages")
        for message in mine["messages"]:
            who = {"client": "client", "mitra": mitra.name}.get(message["sender_role"], message["sender_role"])
            print(f"{'':25}#{message['seq']:<2} {message['kind']:<8} {who:<12} {short(message['text'] or '', 70)}")
        self.say.say(
            mitra.name,
            f"session_transcript names the client '{theirs['session']['client_name']}' "
            f"(the client's own copy: '{mine['session']['client_name']}')",
        )

    def feedback(self, scene: Scene) -> None:
        """The client rates the closed session (`session_feedback`); the mitra never sees a rating, the control
        center sees each mitra's average (`admin_feedback`)."""
        assert self.admin is not None
        client, mitra, session_id = scene.client, scene.mitra, scene.session_id
        comment = "Terima kasih, aku merasa didengar."
        body = {"action": "create", "session_id": session_id, "rating": 5, "comment": comment}
        given = client.call("session_feedback", body)
        self.say.say(
            "client",
            f"session_feedback: rated {given['rating']}/5 with a comment (editable until {given['editable_until']})",
        )
        mitra_id = next(s["mitra_id"] for s in client.sessions()["sessions"] if s["session_id"] == session_id)
        ratings = expect_ok("admin_feedback", self.admin.get("admin_feedback", mitra_id=mitra_id))["mitras"]
        for row in ratings:
            self.say.say(
                "admin",
                f"admin_feedback: {row['mitra_name']} averages {row['average']:.1f} over {row['ratings']} ratings "
                f"({row['comments']} with a comment; {mitra.name} sees no individual rating)",
            )

    # -- set-up and clean-up -----------------------------------------------------------------------------------------

    def keep(self, watch: Watch) -> Watch:
        self.watches.append(watch)
        return watch

    def section(self, title: str) -> None:
        self.say.section(title)

    @contextmanager
    def database(self) -> Iterator[Any]:
        import pg8000.dbapi

        from shared.adapters.postgres.database import Database

        port = self.args.postgres_port
        db = Database(
            lambda: pg8000.dbapi.connect(host="127.0.0.1", port=port, user="postgres", database=DATABASE, timeout=5),
            max_idle=1,
        )
        try:
            with db.transaction() as tx:
                yield tx
        finally:
            db.close()

    def add_demo_tiers(self) -> None:
        with self.database() as tx:
            for sort_order, (tier_id, seconds, price) in enumerate((SESSION_TIER, EXTENSION_TIER), start=90):
                tx.execute(
                    """INSERT INTO pricing_tiers (id, duration_s, price, sort_order) VALUES (:id, :d, :p, :o)
                       ON CONFLICT (id) DO UPDATE SET duration_s = EXCLUDED.duration_s, price = EXCLUDED.price,
                           active = true, updated_at = now()""",
                    {"id": tier_id, "d": seconds, "p": price, "o": sort_order},
                )
        self.tiers_added = True

    def retire_demo_tiers(self) -> None:
        with self.database() as tx:
            tx.execute(
                "UPDATE pricing_tiers SET active = false, updated_at = now() WHERE id = ANY(:ids)",
                {"ids": [SESSION_TIER[0], EXTENSION_TIER[0]]},
            )

    def read_settings(self) -> dict[str, Any]:
        if "admin_config" in BY_NAME and self.admin is not None:
            reply = self.admin.get("admin_config")
            if reply.status == 200:
                return {key: reply.body["settings"][key] for key in DEMO_SETTINGS}
        with self.database() as tx:
            rows = tx.all("SELECT key, value FROM app_config WHERE key = ANY(:keys)", {"keys": list(DEMO_SETTINGS)})
        stored = {row["key"]: row["value"] for row in rows}
        return {key: stored.get(key, default_setting(key)) for key in DEMO_SETTINGS}

    def write_settings(self, values: dict[str, Any]) -> str:
        if "admin_config" in BY_NAME and self.admin is not None:
            reply = self.admin.post("admin_config", {"settings": values})
            if reply.status == 200:
                return "admin_config"
        with self.database() as tx:
            for key, value in values.items():
                tx.execute(
                    """INSERT INTO app_config (key, value) VALUES (:key, CAST(:value AS jsonb))
                       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
                    {"key": key, "value": json.dumps(value)},
                )
        return "app_config in PostgreSQL"

    def clean_up(self) -> None:
        """Put the stack back as the run found it, whatever happened: each step on its own."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("open request cancelled", self.cancel_open_request),
            ("open session ended", self.end_open_session),
        ]
        steps += [(f"{mitra.name} offline", mitra.offline) for mitra in self.mitras]
        steps += [("listeners closed", self.close_watches)]
        if self.saved_settings is not None:
            saved = self.restored(self.saved_settings)
            steps.append((f"settings restored {saved}", lambda: self.write_settings(saved)))
        if self.tiers_added:
            steps.append(("demo tiers retired", self.retire_demo_tiers))
        done = []
        for label, step in steps:
            try:
                if step() is not False:
                    done.append(label)
            except Exception as exc:  # clean-up goes on: report and continue
                self.say.say("", f"!! clean-up: {label} failed: {exc}")
        self.say.say("", "clean-up: " + ", ".join(done))

    def cancel_open_request(self) -> bool:
        """After an interruption: a request still searching is cancelled (False when there was none)."""
        if self.client is None or self.request_id is None:
            return False
        return self.client.app.post("pairing_cancel", {"request_id": self.request_id}).status == 200

    def end_open_session(self) -> bool:
        """After an interruption: a session still active is ended early by the client (False when there was none)."""
        if self.client is None or self.session_id is None:
            return False
        return self.client.app.post("session_end", {"session_id": self.session_id}).status == 200

    @staticmethod
    def restored(saved: dict[str, Any]) -> dict[str, Any]:
        """The saved values; a value equal to the demo's own was left by an interrupted run: back to the default."""
        return {key: default_setting(key) if value == DEMO_SETTINGS[key] else value for key, value in saved.items()}

    def close_watches(self) -> None:
        for watch in self.watches:
            watch.close()
        self.watches.clear()


def _defaults() -> dict[str, str | int]:
    ports = StackPorts.from_firebase_json()
    return {
        "functions_url": f"http://127.0.0.1:{ports.functions}",
        "auth_url": f"http://127.0.0.1:{ports.auth}",
        "firestore_host": f"127.0.0.1:{ports.firestore}",
        "postgres_port": ports.postgres,
    }


def _reachable(url: str) -> bool:
    try:
        requests.get(url, timeout=3)
    except requests.RequestException:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    defaults = _defaults()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--functions-url", default=defaults["functions_url"], help="the gateway serving every function")
    parser.add_argument("--auth-url", default=defaults["auth_url"], help="the Firebase Auth emulator")
    parser.add_argument("--firestore-host", default=defaults["firestore_host"], help="the Firestore emulator")
    parser.add_argument("--postgres-port", type=int, default=defaults["postgres_port"], help="the stack's PostgreSQL")
    args = parser.parse_args(argv)
    args.functions_url = args.functions_url.rstrip("/")
    args.auth_url = args.auth_url.rstrip("/")
    # The listeners (google-cloud-firestore) find the emulator through this variable, as the apps' SDKs are told to.
    os.environ["FIRESTORE_EMULATOR_HOST"] = args.firestore_host
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "demo-halo")

    missing = [url for url in (f"{args.functions_url}/openapi.json", args.auth_url) if not _reachable(url)]
    if missing:
        print(f"The local stack is not answering at {', '.join(missing)}.", file=sys.stderr)
        print(
            "Start it with `make dev` in another terminal, wait for 'stack ready', then run `make demo`.",
            file=sys.stderr,
        )
        return 2

    print(f"Halo Bestie demo against {args.functions_url} (project demo-halo): every step through the real functions,")
    print("the Auth emulator and Firestore listeners, as the apps do. Times are since the start.")
    # Ctrl-C or a plain `kill` stops the story but still runs the clean-up (a shell may have left SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo = Demo(args)
    outcome = 0
    try:
        demo.run()
    except KeyboardInterrupt:
        demo.say.say("", "interrupted")
        outcome = 130
    except (SimulatorError, TimeoutError, RuntimeError, requests.RequestException) as exc:
        demo.say.say("", f"!! the demo stopped: {exc}")
        outcome = 1
    finally:
        demo.section("Clean-up")
        demo.clean_up()
    if outcome == 0:
        demo.say.say("", f"done in {demo.say.elapsed:.1f} s: run `make demo` again any time")
    return outcome


if __name__ == "__main__":
    sys.exit(main())
