"""Presence's repository in memory: the promises of shared/adapters/postgres/presence.py. The sweep's guarded change
takes a mitra offline only if nothing was heard from it since the verdict (shared.domain.presence.silent)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.domain.presence import Heard, LoggedChange, MitraPresence, Pace, Presence, PresenceReason, pace

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

    def _pace(self) -> Pace:
        """The pace from the settings as they are and the number online the last sweep left (none before one)."""
        row = self._db.table("presence_pace").get("one")
        return pace(row["online"] if row else 0, self._db.config)

    def _heard_now(self, mitra: dict[str, object]) -> None:
        mitra["last_heartbeat_at"] = self._db.now
        mitra["heard_until"] = self._db.now + timedelta(seconds=self._pace().grace_s)

    def set_presence(self, mitra_id: str, presence: Presence) -> None:
        mitra = self._db.table("mitras")[mitra_id]
        mitra["presence"] = presence
        if presence is Presence.ONLINE:
            self._heard_now(mitra)

    def heartbeat_if_online(self, mitra_id: str) -> int | None:
        mitra = self._db.table("mitras").get(mitra_id)
        if mitra is None or mitra["presence"] != Presence.ONLINE:
            return None
        self._heard_now(mitra)
        return self._pace().interval_s

    def online_heartbeats(self) -> tuple[datetime, list[Heard]]:
        online = [m for m in self._db.table("mitras").values() if m["presence"] == Presence.ONLINE]
        return self._db.now, [Heard(m["id"], m["last_heartbeat_at"], m.get("heard_until")) for m in online]

    def set_online_count(self, online: int) -> None:
        self._db.table("presence_pace")["one"] = {"online": online}

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
