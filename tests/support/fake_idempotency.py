"""Idempotency keys in memory: the promises of shared/adapters/postgres/idempotency.py (one answer per caller,
function and key, forgotten after KEY_LIFETIME). A unit test runs one call at a time, so the key's lock holds
nothing up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.domain.idempotency import KEY_LIFETIME, Answer, KeyedCall, request_hash

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


def _id(call: KeyedCall) -> tuple[str, str, str]:
    return (call.caller_uid, call.function, call.key)


class FakeIdempotencyRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def lock_key(self, call: KeyedCall) -> None:
        pass

    def answer_to(self, call: KeyedCall) -> Answer | None:
        row = self._db.table("idempotency_keys").get(_id(call))
        if row is None or row["created_at"] <= self._db.now - KEY_LIFETIME:
            return None
        return Answer(row["request_hash"], row["status"], row["body"])

    def remember(self, call: KeyedCall, answer: Answer) -> None:
        self._db.table("idempotency_keys")[_id(call)] = {
            "request_hash": answer.request_hash,
            "status": answer.status,
            "body": answer.body,
            "created_at": self._db.now,
        }

    def forget_expired(self, limit: int) -> int:
        keys = self._db.table("idempotency_keys")
        expired = [key for key, row in keys.items() if row["created_at"] <= self._db.now - KEY_LIFETIME][:limit]
        for key in expired:
            del keys[key]
        return len(expired)

    def forget_caller(self, caller_uid: str) -> int:
        keys = self._db.table("idempotency_keys")
        mine = [key for key in keys if key[0] == caller_uid]
        for key in mine:
            del keys[key]
        return len(mine)


def keyed(function: str, body: dict[str, object], key: str, *, caller_uid: str = "uid-caller") -> KeyedCall:
    """A call as functions/_http.py names it when it carries an Idempotency-Key."""
    return KeyedCall(caller_uid, function, key, request_hash(body))
