"""Act as the apps do: sign in through the Firebase Auth emulator, call functions through the gateway.

The e2e tests, the demo and developers in a Python shell use the same code:

    >>> from emulators.simulator import AuthEmulator, App
    >>> auth = AuthEmulator("http://127.0.0.1:9099")
    >>> client = App("http://127.0.0.1:5001", auth.sign_in_with_google("sari@example.com", "Sari"))
    >>> client.get("pricing_quote")
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

PROJECT = "demo-halo"
_API_KEY = "fake-api-key"  # the emulator accepts any key


@dataclass
class Session:
    """A signed-in Firebase user as an app holds it: an ID token and a refresh token."""

    auth: AuthEmulator
    uid: str
    id_token: str
    refresh_token: str

    def refresh(self) -> Session:
        """What an app does after `client_register`/`mitra_login` to pick up its role claim."""
        tokens = self.auth.exchange_refresh_token(self.refresh_token)
        self.id_token, self.refresh_token = tokens["id_token"], tokens["refresh_token"]
        return self

    @property
    def claims(self) -> dict[str, Any]:
        payload = self.id_token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@dataclass
class AuthEmulator:
    url: str
    project: str = PROJECT
    http: requests.Session = field(default_factory=requests.Session)

    def _identity(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:{method}?key={_API_KEY}", json=body, timeout=10
        )
        response.raise_for_status()
        return dict(response.json())

    def _session(self, result: dict[str, Any]) -> Session:
        return Session(self, result["localId"], result["idToken"], result["refreshToken"])

    def sign_in_with_google(self, email: str, name: str = "Google User", sub: str | None = None) -> Session:
        return self.sign_in_with_idp("google.com", email, name, sub)

    def sign_in_with_apple(self, email: str, name: str = "Apple User", sub: str | None = None) -> Session:
        return self.sign_in_with_idp("apple.com", email, name, sub)

    def sign_in_with_idp(self, provider: str, email: str, name: str, sub: str | None = None) -> Session:
        """The emulator takes an unsigned IdP id_token, as the native Google/Apple SDK would hand to Firebase."""
        claims = {
            "sub": sub or f"{provider}-{uuid.uuid4().hex[:12]}",
            "email": email,
            "email_verified": True,
            "name": name,
        }
        fake_id_token = (
            ".".join(
                base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                for part in ({"alg": "none", "typ": "JWT"}, claims)
            )
            + "."
        )
        return self._session(
            self._identity(
                "signInWithIdp",
                {
                    "postBody": f"id_token={fake_id_token}&providerId={provider}",
                    "requestUri": "http://localhost",
                    "returnSecureToken": True,
                    "returnIdpCredential": True,
                },
            )
        )

    def sign_in_with_phone(self, phone: str) -> Session:
        session_info = self._identity("sendVerificationCode", {"phoneNumber": phone, "recaptchaToken": "emulator"})[
            "sessionInfo"
        ]
        return self._session(
            self._identity("signInWithPhoneNumber", {"sessionInfo": session_info, "code": self.code_for(session_info)})
        )

    def code_for(self, session_info: str) -> str:
        codes = self.http.get(f"{self.url}/emulator/v1/projects/{self.project}/verificationCodes", timeout=10).json()
        return str(next(c["code"] for c in codes["verificationCodes"] if c["sessionInfo"] == session_info))

    def sign_up_with_email(self, email: str, password: str) -> Session:
        return self._session(
            self._identity("signUp", {"email": email, "password": password, "returnSecureToken": True})
        )

    def sign_in_with_email(self, email: str, password: str) -> Session:
        return self._session(
            self._identity("signInWithPassword", {"email": email, "password": password, "returnSecureToken": True})
        )

    def admin(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """The emulator's admin surface ("owner" credential): what the Firebase console would do."""
        response = self.http.post(
            f"{self.url}/identitytoolkit.googleapis.com/v1/projects/{self.project}/accounts:{method}",
            json=body,
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())

    def exchange_refresh_token(self, refresh_token: str) -> dict[str, str]:
        response = self.http.post(
            f"{self.url}/securetoken.googleapis.com/v1/token?key={_API_KEY}",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())

    def expired_token_for(self, session: Session) -> str:
        """The same user's token with `exp` in the past: what an app sends after an hour asleep."""
        return self.altered_token(session, exp=int(time.time()) - 60, iat=int(time.time()) - 3660)

    @staticmethod
    def altered_token(session: Session, **claims: Any) -> str:
        """The emulator's tokens are unsigned, so tests can shape one (e.g. an old `auth_time`)."""
        header = session.id_token.split(".")[0]
        encoded = base64.urlsafe_b64encode(json.dumps(session.claims | claims).encode()).decode().rstrip("=")
        return f"{header}.{encoded}."


@dataclass
class App:
    """A mobile app or the control center, calling functions through the gateway."""

    functions_url: str
    session: Session | None
    http: requests.Session = field(default_factory=requests.Session)

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {}
        if self.session is not None:
            headers["Authorization"] = f"Bearer {self.session.id_token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def post(self, function: str, body: dict[str, Any] | None = None, *, idempotency_key: str | None = None) -> Reply:
        response = self.http.post(
            f"{self.functions_url}/{function}", json=body or {}, headers=self._headers(idempotency_key), timeout=30
        )
        return Reply(response.status_code, _json(response), dict(response.headers))

    def get(self, function: str, **query: Any) -> Reply:
        response = self.http.get(
            f"{self.functions_url}/{function}", params=query, headers=self._headers(None), timeout=30
        )
        return Reply(response.status_code, _json(response), dict(response.headers))


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error_code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Watch:
    """A realtime listener on one document or collection, as an app's Firestore SDK would hold it.

    It listens with the Admin path (the Python client cannot carry a user's token to the emulator's listen
    stream); what each user may read is proven separately against firestore.rules.

    It is handed out once its first snapshot (the state when it started listening) has arrived, as an app shows
    the current state before any change: the emulator can miss a change made while a listen target is still being
    added (a write 9 ms after opening was never reported in about 1 of 150 tries, though a read showed it).
    """

    def __init__(self, target: Any, *, ready_timeout: float = 10) -> None:
        self._condition = threading.Condition()
        self.snapshots: list[dict[str, dict[str, Any]]] = []
        self._watch = target.on_snapshot(self._on_snapshot)
        with self._condition:
            if not self._condition.wait_for(lambda: bool(self.snapshots), ready_timeout):
                self._watch.unsubscribe()
                raise TimeoutError(f"no first snapshot within {ready_timeout}s")

    @classmethod
    def document(cls, path: str, project: str = PROJECT) -> Watch:
        return cls(_firestore(project).document(path))

    @classmethod
    def collection(cls, path: str, project: str = PROJECT) -> Watch:
        return cls(_firestore(project).collection(path))

    def _on_snapshot(self, docs: Any, _changes: Any, _read_time: Any) -> None:
        snapshot = {doc.reference.path: doc.to_dict() for doc in docs if doc.exists}
        with self._condition:
            self.snapshots.append(snapshot)
            self._condition.notify_all()

    @property
    def latest(self) -> dict[str, dict[str, Any]]:
        with self._condition:
            return self.snapshots[-1] if self.snapshots else {}

    def wait_for(self, predicate: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                if self.snapshots and predicate(self.snapshots[-1]):
                    return self.snapshots[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met; last snapshot: {self.snapshots[-1:]}")
                self._condition.wait(remaining)

    def close(self) -> None:
        self._watch.unsubscribe()


_clients: dict[str, Any] = {}


def _firestore(project: str) -> Any:
    if project not in _clients:
        from google.cloud import firestore

        _clients[project] = firestore.Client(project=project)
    return _clients[project]


# -- apps as a developer drives them from a shell (the demo uses these) ----------------------------------------------


class SimulatorError(RuntimeError):
    """A call the simulated app expected to succeed did not."""

    def __init__(self, function: str, reply: Reply) -> None:
        super().__init__(f"{function}: HTTP {reply.status} {reply.body}")
        self.function = function
        self.reply = reply


def expect_ok(function: str, reply: Reply) -> Any:
    """The reply's body when the call succeeded; SimulatorError (carrying the reply) otherwise."""
    if reply.status != 200:
        raise SimulatorError(function, reply)
    return reply.body


def wait_for_one(watch: Watch, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
    """Until one document of the watch's snapshot satisfies `predicate`; returns that document's data.

    Works for a document watch (its one document) and a collection watch (any of its documents)."""
    snapshot = watch.wait_for(lambda docs: any(predicate(doc) for doc in docs.values()), timeout)
    return next(doc for doc in snapshot.values() if predicate(doc))


@dataclass
class Participant:
    """What both apps do inside a session: chat, receipts, typing, goodbye, early end, history."""

    app: App
    name: str
    # What `client_register` / `mitra_login` returned.
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        assert self.app.session is not None
        return self.app.session.uid

    def call(self, function: str, body: dict[str, Any] | None = None, *, idempotency_key: str | None = None) -> Any:
        return expect_ok(function, self.app.post(function, body, idempotency_key=idempotency_key))

    def query(self, function: str, **query: Any) -> Any:
        return expect_ok(function, self.app.get(function, **query))

    def send(self, session_id: str, text: str, client_message_id: str | None = None) -> dict[str, Any]:
        """`{message_id, seq, created_at}`; a retry with the same `client_message_id` gives the same message."""
        body = {"session_id": session_id, "client_message_id": client_message_id or str(uuid.uuid4()), "text": text}
        return dict(self.call("chat_send", body))

    def receipt(self, session_id: str, up_to_message_id: str, status: str = "read") -> dict[str, Any]:
        body = {"session_id": session_id, "up_to_message_id": up_to_message_id, "status": status}
        return dict(self.call("chat_receipts", body))

    def typing(self, session_id: str, typing: bool = True) -> dict[str, Any]:
        return dict(self.call("chat_typing", {"session_id": session_id, "typing": typing}))

    def end(self, session_id: str) -> dict[str, Any]:
        return dict(self.call("session_end", {"session_id": session_id}))

    def goodbye(self, session_id: str, text: str) -> dict[str, Any]:
        return dict(self.call("session_goodbye", {"session_id": session_id, "text": text}))

    def sessions(self) -> dict[str, Any]:
        return dict(self.query("sessions_list"))

    def history(self, session_id: str, **page: Any) -> dict[str, Any]:
        return dict(self.query("chat_history", session_id=session_id, **page))

    def transcript(self, session_id: str) -> dict[str, Any]:
        return dict(self.query("session_transcript", session_id=session_id))

    def watch_session(self, session_id: str) -> Watch:
        return Watch.document(f"sessions/{session_id}")

    def watch_messages(self, session_id: str) -> Watch:
        return Watch.collection(f"sessions/{session_id}/messages")


@dataclass
class Client(Participant):
    """The client app: `Client.sign_up(auth, "http://127.0.0.1:5001", "Sari")`, then buy, request, chat."""

    @classmethod
    def sign_up(cls, auth: AuthEmulator, functions_url: str, name: str = "Sari", email: str | None = None) -> Client:
        """Google sign-in, `client_register`, then a token refresh to carry the role claim (a fresh user each time
        unless `email` names one that exists)."""
        app = App(functions_url, auth.sign_in_with_google(email or f"{uuid.uuid4().hex[:10]}@example.com", name))
        client = cls(app, name)
        client.profile = dict(client.call("client_register", {"display_name": name}))
        assert app.session is not None
        app.session.refresh()
        return client

    def quote(self) -> dict[str, Any]:
        return dict(self.query("pricing_quote"))

    def checkout(self, tier_id: str, purpose: str = "session", extension_id: str | None = None) -> dict[str, Any]:
        """`{transaction_id, invoice_url, expires_at}`: a Xendit invoice to pay."""
        body: dict[str, Any] = {"tier_id": tier_id, "purpose": purpose}
        if extension_id is not None:
            body["extension_id"] = extension_id
        return dict(self.call("billing_checkout", body))

    def pay(self, invoice_url: str, **options: Any) -> dict[str, Any]:
        """Tap "Pay" on the invoice page (the local Xendit stand-in's `/web/<invoice_id>`)."""
        base, _, invoice_id = invoice_url.rpartition("/web/")
        response = self.app.http.post(f"{base}/_standin/invoices/{invoice_id}/pay", json=options, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def buy(self, tier_id: str, purpose: str = "session", extension_id: str | None = None, timeout: float = 15) -> str:
        """Checkout, pay, and wait (listening on `payments/{transaction_id}`) until Xendit's callback has marked
        it paid, as the app does after the payment page. Returns the transaction id."""
        checkout = self.checkout(tier_id, purpose, extension_id)
        payment = Watch.document(f"payments/{checkout['transaction_id']}")
        try:
            self.pay(checkout["invoice_url"])
            wait_for_one(payment, lambda doc: doc.get("status") == "paid", timeout)
        finally:
            payment.close()
        return str(checkout["transaction_id"])

    def request(self, tier_id: str | None = None, *, free_trial: bool = False) -> dict[str, Any]:
        """Tap "Mulai Curhat": `{request_id, status}` (`searching`, or `no_mitra` when nobody is available)."""
        return dict(self.call("pairing_request", {"free_trial": True} if free_trial else {"tier_id": tier_id}))

    def cancel(self, request_id: str) -> dict[str, Any]:
        return dict(self.call("pairing_cancel", {"request_id": request_id}))

    def watch_request(self, request_id: str) -> Watch:
        return Watch.document(f"pairing_requests/{request_id}")

    def request_extension(self, session_id: str, tier_id: str) -> dict[str, Any]:
        return dict(self.call("extension_request", {"session_id": session_id, "tier_id": tier_id}))


@dataclass
class Mitra(Participant):
    """The mitra app: `Mitra.sign_in(auth, "http://127.0.0.1:5001", "+6281100000001")`, online, accept, chat."""

    _alive: threading.Event | None = field(default=None, repr=False)

    @classmethod
    def sign_in(cls, auth: AuthEmulator, functions_url: str, phone: str) -> Mitra:
        """Phone OTP sign-in, `mitra_login` (403 `not_a_mitra` unless an admin registered the phone), refresh."""
        app = App(functions_url, auth.sign_in_with_phone(phone))
        profile = dict(expect_ok("mitra_login", app.post("mitra_login")))
        assert app.session is not None
        app.session.refresh()
        return cls(app, str(profile.get("display_name") or phone), profile)

    def online(self) -> dict[str, Any]:
        return dict(self.call("mitra_set_status", {"status": "online"}))

    def offline(self) -> dict[str, Any]:
        self.stop_heartbeat()
        return dict(self.call("mitra_set_status", {"status": "offline"}))

    def heartbeat(self) -> dict[str, Any]:
        return dict(self.call("mitra_heartbeat"))

    def keep_alive(self, every_s: float | None = None) -> None:
        """Heartbeat in the background while online, as the app does in the foreground: the next beat when the last
        reply's `next_heartbeat_s` says (30 s before the first reply), or every `every_s` if given."""
        if self._alive is not None:
            return
        alive = self._alive = threading.Event()

        def beat() -> None:
            wait_s = every_s or 30.0
            while not alive.wait(wait_s):
                try:
                    told = self.heartbeat().get("next_heartbeat_s")
                except (SimulatorError, requests.RequestException):
                    continue  # the next beat tries again, as the app would
                if every_s is None and isinstance(told, int) and told > 0:
                    wait_s = float(told)

        threading.Thread(target=beat, name=f"heartbeat-{self.uid}", daemon=True).start()

    def stop_heartbeat(self) -> None:
        if self._alive is not None:
            self._alive.set()
            self._alive = None

    def watch_offers(self) -> Watch:
        return Watch.collection(f"mitras/{self.uid}/offers")

    def accept(self, request_id: str) -> Reply:
        """The raw reply: 200 `{session_id}`, or 409 `already_taken` / `capacity_reached` when racing others."""
        return self.app.post("pairing_accept", {"request_id": request_id})

    def decline(self, request_id: str) -> dict[str, Any]:
        return dict(self.call("pairing_decline", {"request_id": request_id}))

    def respond_extension(self, extension_id: str, accept: bool = True) -> dict[str, Any]:
        return dict(self.call("extension_respond", {"extension_id": extension_id, "accept": accept}))
