"""Push notifications in memory: the promises of shared/adapters/postgres/notify.py (a token belongs to the last user
who registered it; a notification is claimed once per recipient), and FCM's answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain import texts
from shared.domain.notify import Device, PushMessage, PushResult

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


@dataclass
class FakeFcm:
    """FCM: the messages sent, in order. A token in `answers` gets that result (a dead or failing device); every
    other is sent."""

    sent: list[PushMessage] = field(default_factory=list)
    answers: dict[str, PushResult] = field(default_factory=dict)

    def send_many(self, messages: list[PushMessage]) -> list[PushResult]:
        results = [self.answers.get(message.token, PushResult.SENT) for message in messages]
        self.sent.extend(m for m, result in zip(messages, results, strict=True) if result is PushResult.SENT)
        return results


class FakeNotifyRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _devices(self) -> dict[Any, Row]:
        return self._db.table("devices")

    def register_device(self, token: str, uid: str, platform: str) -> None:
        self._devices()[token] = {
            "token": token,
            "firebase_uid": uid,
            "platform": platform,
            "last_seen_at": self._db.now,
        }

    def claim_pushes(self, dedup_key: str, uids: Sequence[str]) -> list[str]:
        log = self._db.table("push_log")
        fresh = [uid for uid in dict.fromkeys(uids) if (dedup_key, uid) not in log]
        for uid in fresh:
            log[(dedup_key, uid)] = {"dedup_key": dedup_key, "firebase_uid": uid}
        return fresh

    def still_offered(self, request_id: str, uids: Sequence[str]) -> list[str]:
        request = self._db.table("pairing_requests").get(request_id)
        if request is None or request["status"] != "searching":
            return []
        mitras = self._db.table("mitras")
        open_to = {
            mitras[offer["mitra_id"]].get("firebase_uid")
            for (offered, _), offer in self._db.table("pairing_offers").items()
            if offered == request_id and offer["status"] == "offered"
        }
        return [uid for uid in uids if uid in open_to]

    def release_pushes(self, dedup_key: str, uids: Sequence[str]) -> None:
        for uid in uids:
            self._db.table("push_log").pop((dedup_key, uid), None)

    def devices_of(self, uids: Sequence[str]) -> list[Device]:
        return [
            Device(row["token"], row["firebase_uid"], self._locale(row["firebase_uid"]))
            for row in self._devices().values()
            if row["firebase_uid"] in uids
        ]

    def _locale(self, uid: str) -> str:
        """As the statement's join: the client's or the mitra's language, else (an admin) the default."""
        for table in ("clients", "mitras"):
            for row in self._db.table(table).values():
                if row.get("firebase_uid") == uid:
                    return str(row.get("locale", texts.DEFAULT_LOCALE))
        return texts.DEFAULT_LOCALE

    def prune_devices(self, tokens: Sequence[str]) -> None:
        for token in tokens:
            self._devices().pop(token, None)

    def forget_devices_of(self, uid: str) -> None:
        for token in [t for t, row in self._devices().items() if row["firebase_uid"] == uid]:
            del self._devices()[token]
