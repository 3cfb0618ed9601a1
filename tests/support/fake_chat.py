"""Chat's repository in memory: the promises of shared/adapters/postgres/chat.py, with its guarded statements'
rules (shared.domain.chat.may_send, typing_renewable, typing_clearable) applied in Python."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain import chat as rules
from shared.domain.accounts import client_sees_session
from shared.domain.chat import (
    Appended,
    NewMessage,
    Recipient,
    Refused,
    SendRefusal,
    Sent,
    Side,
    TypingWritten,
    Watermarks,
)
from shared.domain.events import Committed, DocumentWrite, TopicMessage

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase, FakeOutbox

Row = dict[str, Any]


def add_session(db: FakeDatabase, session_id: str, *, client: Row, mitra: Row, minutes: int = 30, **extra: Any) -> Row:
    """An active session between two people (rows of `clients` and `mitras`), as pairing leaves it."""
    db.table("clients")[client["id"]] = {"anonymous": False, "alias_number": 1234, **client}
    db.table("mitras")[mitra["id"]] = mitra
    row: Row = {
        "id": session_id,
        "client_id": client["id"],
        "mitra_id": mitra["id"],
        "status": "active",
        "kind": "paid",
        "started_at": db.now,
        "ends_at": db.now + timedelta(minutes=minutes),
        "next_seq": 0,
        "version": 1,
        "client_delivered_seq": 0,
        "client_read_seq": 0,
        "client_receipts_outbox_id": None,
        "client_typing_at": None,
        "mitra_delivered_seq": 0,
        "mitra_read_seq": 0,
        "mitra_receipts_outbox_id": None,
        "mitra_typing_at": None,
        **extra,
    }
    db.table("sessions")[session_id] = row
    return row


class FakeChatRepository:
    def __init__(self, db: FakeDatabase, outbox: FakeOutbox) -> None:
        self._db = db
        self._outbox = outbox

    def _messages(self, session_id: str) -> list[Row]:
        return sorted(
            (m for m in self._db.table("chat_messages").values() if m["session_id"] == session_id),
            key=lambda m: m["seq"],
        )

    def append_if_sender_may_send(
        self, message: NewMessage, *, sender_id: str, document: DocumentWrite, posted: TopicMessage
    ) -> Appended | Refused:
        now = self._db.now
        session = self._db.table("sessions").get(message.session_id)
        mine = session is not None and session[f"{message.sender_role}_id"] == sender_id
        recent = [
            m
            for m in self._messages(message.session_id)
            if m["sender_id"] == sender_id and m["created_at"] > now - timedelta(minutes=1)
        ]
        refusal = rules.may_send(
            session_active=mine and session is not None and session["status"] == "active",
            ends_at=session["ends_at"] if session else now,
            now=now,
            sent_last_minute=len(recent),
            per_minute=self._db.config.messages_per_minute,
        )
        if refusal is SendRefusal.RATE_LIMITED:
            wait = min(m["created_at"] for m in recent) + timedelta(minutes=1) - now
            return Refused(refusal, retry_after_s=max(1, int(wait.total_seconds() + 0.999)))
        if refusal is not None:
            return Refused(refusal)
        assert session is not None
        if any(m["client_message_id"] == message.client_message_id for m in self._messages(message.session_id)):
            return Refused(SendRefusal.ALREADY_STORED)
        seq, created_at = self._insert(message, sender_id=sender_id, session=session)
        document = rules.stamped(document, seq=seq, created_at=created_at)
        return Appended(
            seq=seq,
            created_at=created_at,
            committed=[
                Committed(self._outbox.insert(document), document),
                Committed(self._outbox.insert(posted), posted),
            ],
        )

    def _insert(self, message: NewMessage, *, sender_id: str | None, session: Row) -> tuple[int, datetime]:
        session["next_seq"] += 1
        self._db.table("chat_messages")[message.message_id] = {
            "id": message.message_id,
            "session_id": message.session_id,
            "seq": session["next_seq"],
            "kind": message.kind,
            "sender_role": message.sender_role,
            "sender_id": sender_id,
            "client_message_id": message.client_message_id,
            "text": message.text,
            "created_at": self._db.now,
        }
        return session["next_seq"], self._db.now

    def stored(self, session_id: str, client_message_id: str) -> Sent | None:
        for m in self._messages(session_id):
            if m["client_message_id"] == client_message_id:
                return Sent(m["id"], m["seq"], m["created_at"])
        return None

    def append(self, message: NewMessage, *, sender_id: str | None) -> tuple[int, datetime]:
        return self._insert(message, sender_id=sender_id, session=self._db.table("sessions")[message.session_id])

    def recipient(self, session_id: str, message_id: str) -> Recipient | None:
        message = self._db.table("chat_messages").get(message_id)
        session = self._db.table("sessions").get(session_id)
        if message is None or session is None or message["session_id"] != session_id:
            return None
        client = self._db.table("clients")[session["client_id"]]
        mitra = self._db.table("mitras")[session["mitra_id"]]
        uid = mitra["firebase_uid"] if message["sender_role"] == "client" else client["firebase_uid"]
        side = "mitra" if message["sender_role"] == "client" else "client"
        return Recipient(uid, message["text"], side, client.get("push_previews", False)) if uid else None

    def locked_watermarks(self, session_id: str, side: Side, account_id: str) -> Watermarks | None:
        session = self._db.table("sessions").get(session_id)
        if session is None or session[f"{side}_id"] != account_id:
            return None
        return Watermarks(
            session[f"{side}_delivered_seq"], session[f"{side}_read_seq"], session[f"{side}_receipts_outbox_id"]
        )

    def message_seq(self, session_id: str, message_id: str) -> int | None:
        message = self._db.table("chat_messages").get(message_id)
        return message["seq"] if message and message["session_id"] == session_id else None

    def save_watermarks(self, session_id: str, side: Side, marks: Watermarks) -> None:
        session = self._db.table("sessions")[session_id]
        session[f"{side}_delivered_seq"], session[f"{side}_read_seq"] = marks.delivered, marks.read
        session[f"{side}_receipts_outbox_id"] = marks.pending_outbox_id

    def typing(
        self, session_id: str, side: Side, account_id: str, *, typing: bool, renew_s: float, ttl_s: float
    ) -> TypingWritten | None:
        session = self._db.table("sessions").get(session_id)
        if session is None or session["status"] != "active" or session[f"{side}_id"] != account_id:
            return None
        now, lease = self._db.now, session[f"{side}_typing_at"]
        if typing:
            allowed = rules.typing_renewable(lease, now)
        else:
            sent_since = lease is not None and any(
                m["sender_id"] == account_id and m["created_at"] >= lease for m in self._messages(session_id)
            )
            allowed = rules.typing_clearable(lease, now, sent_since_lease=sent_since)
        if not allowed:
            return None
        session[f"{side}_typing_at"] = now if typing else None
        pending = session[f"{side}_receipts_outbox_id"]
        if pending is not None and not any(r.outbox_id == pending and not r.published for r in self._db.outbox):
            pending = None
        return TypingWritten(now, session[f"{side}_delivered_seq"], session[f"{side}_read_seq"], pending)

    def is_participant(self, session_id: str, side: Side, account_id: str) -> bool:
        session = self._db.table("sessions").get(session_id)
        return session is not None and session[f"{side}_id"] == account_id

    def session_view(self, session_id: str) -> Row | None:
        session = self._db.table("sessions").get(session_id)
        return self._view(session) if session else None

    def _view(self, session: Row) -> Row:
        client = self._db.table("clients")[session["client_id"]]
        mitra = self._db.table("mitras")[session["mitra_id"]]
        return {
            "session_id": session["id"],
            "status": session["status"],
            "kind": session["kind"],
            "started_at": session["started_at"],
            "ends_at": session["ends_at"],
            "client_display_name": client["display_name"],
            "anonymous": client["anonymous"],
            "alias_number": client["alias_number"],
            "mitra_name": mitra["display_name"],
            "client_id": session["client_id"],
            "mitra_id": session["mitra_id"],
            "client_history_from": client.get("history_from"),
        }

    def history(self, session_id: str, *, before_seq: int | None, limit: int) -> list[Row]:
        older = [m for m in self._messages(session_id) if before_seq is None or m["seq"] < before_seq]
        return [_shown(m) for m in reversed(older)][:limit]

    def messages(self, session_id: str) -> list[Row]:
        return [_shown(m) for m in self._messages(session_id)]

    def sessions_of(self, side: Side, account_id: str, *, after: tuple[datetime, str] | None, limit: int) -> list[Row]:
        clients = self._db.table("clients")
        mine = sorted(
            (
                s
                for s in self._db.table("sessions").values()
                if s[f"{side}_id"] == account_id
                and (
                    side != "client"
                    or client_sees_session(
                        started_at=s["started_at"], history_from=clients[account_id].get("history_from")
                    )
                )
            ),
            key=lambda s: (s["started_at"], s["id"]),
            reverse=True,
        )
        return [self._view(s) for s in mine if after is None or (s["started_at"], s["id"]) < after][:limit]


def _shown(message: Row) -> Row:
    return {
        "message_id": message["id"],
        "seq": message["seq"],
        "kind": message["kind"],
        "sender_role": message["sender_role"],
        "text": message["text"],
        "created_at": message["created_at"],
    }
