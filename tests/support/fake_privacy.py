"""A client's data in memory: the promises of shared/adapters/postgres/privacy.py, with retention decided by
shared.domain.privacy.retention_over as its statement does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.domain.events import DocumentWrite, TopicMessage, encode
from shared.domain.privacy import ClientOnRecord, ClientSession, ErasedText, Record, retention_over

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

# The columns each export reads, as shared/adapters/postgres/privacy.py names them.
_PROFILE = ("display_name", "anonymous", "alias_number", "phone", "email", "created_at", "suspended_at", "deleted_at")
_SESSION = ("kind", "status", "started_at", "ends_at", "closed_at")
_MESSAGE = ("session_id", "seq", "kind", "sender_role", "text", "created_at")
_TRANSACTION = (
    "purpose",
    "tier_id",
    "duration_s",
    "amount",
    "currency",
    "status",
    "payment_method",
    "payment_channel",
    "created_at",
    "paid_at",
    "expired_at",
)


def _picked(row: Record, columns: tuple[str, ...]) -> Record:
    return {column: row.get(column) for column in columns}


class FakePrivacyRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _client_sessions(self, client_id: str) -> list[Record]:
        return sorted(
            (s for s in self._db.table("sessions").values() if s["client_id"] == client_id),
            key=lambda s: (s["started_at"], s["id"]),
        )

    def _messages_in(self, session_ids: Sequence[str]) -> list[Record]:
        order = {session_id: n for n, session_id in enumerate(session_ids)}
        return sorted(
            (m for m in self._db.table("chat_messages").values() if m["session_id"] in order),
            key=lambda m: (order[m["session_id"]], m["seq"]),
        )

    def _owned(self, table: str, client_id: str) -> list[Record]:
        return [row for row in self._db.table(table).values() if row["client_id"] == client_id]

    def read_one_snapshot(self) -> None:
        """One test runs one change at a time."""

    def profile(self, client_id: str) -> Record | None:
        row = self._db.table("clients").get(client_id)
        if row is None:
            return None
        settings = {"locale": row.get("locale", "id"), "push_previews": row.get("push_previews", False)}
        return {"client_id": client_id, **_picked(row, _PROFILE), **settings, "exported_at": self._db.now}

    def sessions(self, client_id: str) -> list[Record]:
        mitras = self._db.table("mitras")
        return [
            {"session_id": s["id"], "mitra_name": mitras[s["mitra_id"]]["display_name"], **_picked(s, _SESSION)}
            for s in self._client_sessions(client_id)
        ]

    def messages(self, client_id: str) -> list[Record]:
        return [
            {"message_id": m["id"], **_picked(m, _MESSAGE)}
            for m in self._messages_in([s["id"] for s in self._client_sessions(client_id)])
        ]

    def transactions(self, client_id: str) -> list[Record]:
        transactions = self._owned("customer_transactions", client_id)
        return [{"transaction_id": t["id"], **_picked(t, _TRANSACTION)} for t in transactions]

    def feedback(self, client_id: str) -> list[Record]:
        rows = sorted(self._owned("session_feedback", client_id), key=lambda f: (f["created_at"], f["session_id"]))
        return [_picked(f, ("session_id", "rating", "comment", "created_at", "updated_at")) for f in rows]

    def reports_filed(self, client_id: str) -> list[Record]:
        rows = [r for r in self._owned("reports", client_id) if r["reporter_role"] == "client"]
        return [
            {
                "report_id": r["id"],
                **_picked(r, ("session_id", "category", "text", "status", "created_at", "decided_at")),
            }
            for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]))
        ]

    def blocks_made(self, client_id: str) -> list[Record]:
        rows = [b for b in self._owned("blocks", client_id) if b["blocked_by"] == "client"]
        mitras = self._db.table("mitras")
        return [
            {
                "block_id": b["id"],
                "session_id": b["session_id"],
                "mitra_name": mitras[b["mitra_id"]]["display_name"],
                "created_at": b["created_at"],
            }
            for b in sorted(rows, key=lambda b: (b["created_at"], b["id"]))
        ]

    def credit_backs(self, client_id: str) -> list[Record]:
        rows = sorted(self._owned("session_credit_backs", client_id), key=lambda c: (c["created_at"], c["session_id"]))
        return [{**_picked(c, ("session_id", "unused_s", "amount", "created_at")), "currency": "IDR"} for c in rows]

    def credit_back_uses(self, client_id: str) -> list[Record]:
        return [
            {
                **_picked(u, ("transaction_id", "kind", "amount")),
                "currency": "IDR",
                "created_at": u.get("created_at", self._db.now),
            }
            for u in self._owned("credit_back_uses", client_id)
        ]

    def locked_client(self, client_id: str) -> ClientOnRecord | None:
        row = self._db.table("clients").get(client_id)
        if row is None:
            return None
        deleted = row.get("deleted_at") is not None
        return ClientOnRecord(row["firebase_uid"], deleted, row["anonymous"], row["alias_number"])

    def has_open_session_or_search(self, client_id: str) -> bool:
        return any(s["status"] != "closed" for s in self._client_sessions(client_id)) or any(
            r["status"] == "searching" for r in self._owned("pairing_requests", client_id)
        )

    def anonymise(self, client_id: str, *, name: str) -> None:
        takeovers = self._db.table("client_takeovers")
        for takeover_id in [t for t, row in takeovers.items() if row["client_id"] == client_id]:
            del takeovers[takeover_id]
        self._db.table("clients")[client_id].update(
            display_name=name, phone=None, email=None, firebase_uid=None, deleted_at=self._db.now
        )

    def erase_texts_of(self, client_id: str) -> list[ErasedText]:
        return self._erase(self._messages_in([s["id"] for s in self._client_sessions(client_id)]))

    def _erase(self, messages: list[Record]) -> list[ErasedText]:
        erased = [m for m in messages if m["text"] is not None]
        for message in erased:
            message["text"] = None
        return [ErasedText(m["session_id"], m["id"]) for m in erased]

    def sessions_with_mitras(self, client_id: str) -> list[ClientSession]:
        mitras = self._db.table("mitras")
        return [ClientSession(s["id"], mitras[s["mitra_id"]]["firebase_uid"]) for s in self._client_sessions(client_id)]

    def request_ids(self, client_id: str) -> list[str]:
        return [r["id"] for r in self._owned("pairing_requests", client_id)]

    def transaction_ids(self, client_id: str) -> list[str]:
        return [t["id"] for t in self._owned("customer_transactions", client_id)]

    def sessions_past_retention(self, retention_days: int, *, limit: int) -> list[str]:
        due = sorted(
            (
                s
                for s in self._db.table("sessions").values()
                if s["status"] == "closed"
                and s.get("texts_erased_at") is None
                and retention_over(s["closed_at"], retention_days, self._db.now)
            ),
            key=lambda s: s["closed_at"],
        )
        return [s["id"] for s in due[:limit]]

    def erase_texts_in(self, session_ids: Sequence[str], *, limit: int) -> list[ErasedText]:
        return self._erase([m for m in self._messages_in(session_ids) if m["text"] is not None][:limit])

    def mark_texts_erased(self, session_ids: Sequence[str]) -> None:
        for session_id in session_ids:
            if all(m["text"] is None for m in self._messages_in([session_id])):
                self._db.table("sessions")[session_id]["texts_erased_at"] = self._db.now

    def erase_safety_texts_in(self, session_ids: Sequence[str]) -> None:
        for table, columns in (
            ("session_feedback", ("comment",)),
            ("mitra_notes", ("text",)),
            ("reports", ("text", "decision_note")),
        ):
            for row in self._db.table(table).values():
                if row["session_id"] in session_ids:
                    row.update(dict.fromkeys(columns))

    def erase_copies_in(self, session_ids: Sequence[str]) -> None:
        noted = set()
        for flag in self._db.table("safety_flags").values():
            if flag["session_id"] in session_ids:
                if flag.get("note") is not None:
                    noted.add(flag["id"])
                flag.update(phrase=None, note=None)
        for entry in self._db.audit:
            if entry["action"] == "alert.acknowledge" and entry["target"] in noted and isinstance(entry["new"], dict):
                entry["new"] = {key: value for key, value in entry["new"].items() if key != "note"}
        for row in self._db.outbox:
            if row.published:
                continue
            event = row.event
            if isinstance(event, DocumentWrite) and any(
                path.split("/")[:2] == ["sessions", sid] for path in event.paths for sid in session_ids
            ):
                if isinstance(event.data.get("text"), str):
                    data = {k: v for k, v in event.data.items() if k not in ("text", "params", "text_by_locale")}
                    row.event = DocumentWrite(event.paths, {**data, "erased": True}, event.merge)
            elif isinstance(event, TopicMessage) and (event.data.get("data") or {}).get("session_id") in session_ids:
                row.event = TopicMessage(
                    event.topic, {k: v for k, v in event.data.items() if k not in ("body", "params")}, event.attributes
                )

    def forget_published_about(self, keys: Sequence[str]) -> int:
        def names(row_event: object) -> bool:
            encoded = encode(row_event)  # type: ignore[arg-type]
            text = f"{encoded.destination} {json.dumps(encoded.payload)}"
            return any(key in text for key in keys)

        kept = [row for row in self._db.outbox if not (row.published and names(row.event))]
        forgotten = len(self._db.outbox) - len(kept)
        self._db.outbox[:] = kept
        return forgotten

    def purge_published(self, keep_days: int, *, limit: int) -> int:
        cutoff = self._db.now - timedelta(days=keep_days)
        old = [row for row in self._db.outbox if row.published and row.created_at < cutoff][:limit]
        gone = {row.outbox_id for row in old}
        self._db.outbox[:] = [row for row in self._db.outbox if row.outbox_id not in gone]
        return len(old)
