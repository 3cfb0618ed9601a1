"""The control center's roster in memory: the promises of shared/adapters/postgres/admin_mitras.py (one mitra per
phone number, as the unique index on mitras.phone keeps it; online time split by Jakarta day as the statement
splits it)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain import days
from shared.domain.accounts import MitraRelink, RelinkStatus
from shared.domain.admin import MitraOnRoster, OnlineDay, StatusChange
from tests.support.fake_admin_sessions import OPEN_SESSION, open_sessions

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeAdminMitrasRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _mitras(self) -> dict[Any, Row]:
        return self._db.table("mitras")

    def _on_roster(self, row: Row) -> MitraOnRoster:
        return MitraOnRoster(
            mitra_id=row["id"],
            firebase_uid=row["firebase_uid"],
            display_name=row["display_name"],
            phone=row["phone"],
            active=row["active"],
            presence=row["presence"],
            last_heartbeat_at=row.get("last_heartbeat_at"),
            created_at=row.get("created_at", self._db.now),
            open_sessions=open_sessions(self._db, row["id"]),
            max_concurrent_clients=row.get("max_concurrent_clients"),
        )

    def roster(
        self,
        *,
        presence: str | None,
        active: bool | None,
        search: str | None,
        after_mitra: tuple[str, str] | None,
        limit: int,
    ) -> list[MitraOnRoster]:
        found = [
            m
            for m in self._mitras().values()
            if (presence is None or m["presence"] == presence)
            and (active is None or m["active"] == active)
            and (search is None or search.lower() in m["display_name"].lower() or search in m["phone"])
            and (after_mitra is None or (m["display_name"], m["id"]) > after_mitra)
        ]
        found.sort(key=lambda m: (m["display_name"], m["id"]))
        return [self._on_roster(m) for m in found[:limit]]

    def mitra(self, mitra_id: str, *, lock: bool = False) -> MitraOnRoster | None:
        row = self._mitras().get(mitra_id)
        return self._on_roster(row) if row else None

    def phone_of_client(self, phone: str) -> bool:
        return any(c.get("phone") == phone for c in self._db.table("clients").values())

    def add_if_phone_free(self, phone: str, display_name: str) -> str | None:
        if any(m["phone"] == phone for m in self._mitras().values()):
            return None
        mitra_id = str(uuid.uuid4())
        self._mitras()[mitra_id] = {
            "id": mitra_id,
            "firebase_uid": None,
            "display_name": display_name,
            "phone": phone,
            "active": True,
            "presence": "offline",
            "last_heartbeat_at": None,
            "created_at": self._db.now,
        }
        return mitra_id

    def rename(self, mitra_id: str, display_name: str) -> None:
        self._mitras()[mitra_id]["display_name"] = display_name

    def set_capacity(self, mitra_id: str, max_clients: int | None) -> None:
        self._mitras()[mitra_id]["max_concurrent_clients"] = max_clients

    def open_sessions(self, mitra_id: str) -> list[str]:
        return [
            s["id"]
            for s in self._db.table("sessions").values()
            if s["mitra_id"] == mitra_id and s["status"] in OPEN_SESSION
        ]

    def take_off_roster(self, mitra_id: str) -> None:
        self._mitras()[mitra_id].update(active=False, presence="offline")

    def put_back_on_roster(self, mitra_id: str) -> None:
        self._mitras()[mitra_id]["active"] = True

    def _logs(self, mitra_id: str) -> list[Row]:
        return sorted(
            (log for log in self._db.table("mitra_status_logs").values() if log["mitra_id"] == mitra_id),
            key=lambda log: log["at"],
        )

    def status_changes(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatusChange]:
        return [
            StatusChange(log["at"], log["from_status"], log["to_status"], log["reason"])
            for log in self._logs(mitra_id)
            if starts <= log["at"] < ends
        ]

    def online_by_day(
        self, mitra_id: str, *, first: date, last: date, starts: datetime, ends: datetime, zone: str
    ) -> list[OnlineDay]:
        logs = self._logs(mitra_id)
        before = [log for log in logs if log["at"] < starts][-1:]
        transitions = before + [log for log in logs if starts <= log["at"] < ends]
        until = min(self._db.now, ends)
        spans = [
            (max(log["at"], starts), min(following["at"] if following else until, until))
            for log, following in zip(transitions, [*transitions[1:], None], strict=True)
            if log["to_status"] == "online"
        ]
        online = []
        day = first
        while day <= last:
            day_start, day_end = days.starts(day), days.starts(day + timedelta(days=1))
            seconds = sum(max(0.0, (min(end, day_end) - max(start, day_start)).total_seconds()) for start, end in spans)
            online.append(OnlineDay(day, round(seconds)))
            day += timedelta(days=1)
        return online

    # -- relinks -----------------------------------------------------------------------------------------------------

    def _relink(self, row: Row) -> MitraRelink:
        mitra = self._mitras()[row["mitra_id"]]
        return MitraRelink(
            relink_id=row["id"],
            mitra_id=row["mitra_id"],
            mitra_name=mitra["display_name"],
            phone=mitra["phone"],
            firebase_uid=row["firebase_uid"],
            previous_uid=row["previous_uid"],
            status=RelinkStatus(row["status"]),
            requested_at=row["requested_at"],
            decided_at=row["decided_at"],
            decided_by=row["decided_by"],
            note=row["note"],
        )

    def relinks(self, *, status: str | None, after: tuple[datetime, str] | None, limit: int) -> list[MitraRelink]:
        rows = sorted(
            self._db.table("mitra_relinks").values(), key=lambda r: (r["requested_at"], r["id"]), reverse=True
        )
        return [
            self._relink(r)
            for r in rows
            if (status is None or r["status"] == status) and (after is None or (r["requested_at"], r["id"]) < after)
        ][:limit]

    def relink(self, relink_id: str, *, lock: bool = False) -> MitraRelink | None:
        row = self._db.table("mitra_relinks").get(relink_id)
        return self._relink(row) if row else None

    def decide_relink(self, relink_id: str, *, status: RelinkStatus, admin_uid: str, note: str | None) -> None:
        row = self._db.table("mitra_relinks")[relink_id]
        if row["status"] == "pending":
            row.update(status=status.value, decided_at=self._db.now, decided_by=admin_uid, note=note)
