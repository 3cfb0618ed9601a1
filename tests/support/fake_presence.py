"""Presence's repository in memory: the promises of shared/adapters/postgres/presence.py. The sweep's guarded change
takes a mitra offline only if nothing was heard from it since the verdict (shared.domain.presence.silent)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.domain.presence import Heard, LoggedChange, MitraPresence, Presence, PresenceReason

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


class FakePresenceRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def lock_active_mitra(self, mitra_id: str) -> MitraPresence | None:
        mitra = self._db.table("mitras").get(mitra_id)
        if mitra is None or not mitra["active"]:
            return None
        logs = [row for row in self._db.table("mitra_status_logs").values() if row["mitra_id"] == mitra_id]
        last = None
        if logs:
            latest = logs[-1]
            last = LoggedChange(Presence(latest["to_status"]), PresenceReason(latest["reason"]), latest["at"])
        return MitraPresence(Presence(mitra["presence"]), mitra["firebase_uid"], last, self._db.now)

    def set_presence(self, mitra_id: str, presence: Presence) -> None:
        mitra = self._db.table("mitras")[mitra_id]
        mitra["presence"] = presence
        if presence is Presence.ONLINE:
            mitra["last_heartbeat_at"] = self._db.now

    def heartbeat_if_online(self, mitra_id: str) -> bool:
        mitra = self._db.table("mitras").get(mitra_id)
        if mitra is None or mitra["presence"] != Presence.ONLINE:
            return False
        mitra["last_heartbeat_at"] = self._db.now
        return True

    def online_heartbeats(self) -> tuple[datetime, list[Heard]]:
        online = [m for m in self._db.table("mitras").values() if m["presence"] == Presence.ONLINE]
        return self._db.now, [Heard(m["id"], m["last_heartbeat_at"]) for m in online]

    def take_offline_unless_heard_since(self, silent: list[Heard]) -> list[str]:
        gone = []
        for heard in silent:
            mitra = self._db.table("mitras")[heard.mitra_id]
            if mitra["presence"] == Presence.ONLINE and mitra["last_heartbeat_at"] == heard.last_heartbeat_at:
                mitra["presence"] = Presence.OFFLINE
                gone.append(heard.mitra_id)
        return gone

    def log_transitions(self, mitra_ids: list[str], from_status: str, to_status: str, reason: str) -> None:
        for mitra_id in mitra_ids:
            self._db.table("mitra_status_logs")[self._db.next_id()] = {
                "mitra_id": mitra_id,
                "from_status": from_status,
                "to_status": to_status,
                "reason": reason,
                "at": self._db.now,
            }
