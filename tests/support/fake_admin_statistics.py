"""Reports in memory: the promises of shared/adapters/postgres/admin_statistics.py, each tally counted in Python by
the rule its SQL applies (a session on the Jakarta day it started, a payment on the day it was paid, a refund on
the day the ledger recorded it, a request on the day it was made; a payment belongs to the mitra of the session
whose request used its credit). Extensions are left to the SQL's integration tests."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.domain.admin_statistics import MitraTally, StatementSession, Tally

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeAdminStatisticsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _run_s(self, session: Row) -> float:
        end = session.get("closing_at") or session.get("closed_at") or self._db.now
        return float((end - session["started_at"]).total_seconds())

    def _in(self, at: datetime | None, starts: datetime, ends: datetime) -> bool:
        return at is not None and starts <= at < ends

    def _owner(self, transaction_id: str) -> Row | None:
        """The session whose matched request used this transaction's credit."""
        requests = self._db.table("pairing_requests")
        for session in self._db.table("sessions").values():
            request = requests.get(session.get("request_id"))
            if request and request.get("transaction_id") == transaction_id and request["status"] == "matched":
                return session
        return None

    def _parts(self, starts: datetime, ends: datetime, key: Any) -> dict[Any, dict[str, float]]:
        counted: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for s in self._db.table("sessions").values():
            if self._in(s["started_at"], starts, ends):
                part = counted[key(s["started_at"], s)]
                part["sessions"] += 1
                part["session_s"] += self._run_s(s)
        for t in self._db.table("customer_transactions").values():
            if t["status"] == "paid" and self._in(t.get("paid_at"), starts, ends):
                k = key(t["paid_at"], self._owner(t["id"]))
                if k is not None:
                    counted[k]["payments"] += 1
                    counted[k]["revenue"] += t["paid_amount"]
        for entry in self._db.table("ledger_entries").values():
            if entry["kind"] == "refund" and self._in(entry["created_at"], starts, ends):
                k = key(entry["created_at"], self._owner(entry["transaction_id"]))
                if k is not None:
                    counted[k]["refund_count"] += 1
                    counted[k]["refunded"] += entry["amount"]
        sessions_by_request = {s.get("request_id"): s for s in self._db.table("sessions").values()}
        for r in self._db.table("pairing_requests").values():
            if not self._in(r["created_at"], starts, ends):
                continue
            k = key(r["created_at"], sessions_by_request.get(r["id"]))
            if k is None:
                continue
            part = counted[k]
            part["requests_finished"] += r["status"] != "searching"
            part["no_mitra"] += r["status"] == "no_mitra"
            if r["status"] == "matched":
                part["matched"] += 1
                part["wait_s"] += (r["ended_at"] - r["created_at"]).total_seconds()
        return counted

    def by_day(self, *, starts: datetime, ends: datetime, zone: str) -> dict[date, Tally]:
        tz = ZoneInfo(zone)
        counted = self._parts(starts, ends, lambda at, _owner: at.astimezone(tz).date())
        return {day: _tally(part) for day, part in counted.items()}

    def by_mitra(self, *, starts: datetime, ends: datetime) -> list[MitraTally]:
        counted = self._parts(starts, ends, lambda _at, owner: owner["mitra_id"] if owner else None)
        mitras = self._db.table("mitras")
        found = [MitraTally(m, mitras[m]["display_name"], _tally(part)) for m, part in counted.items()]
        return sorted(
            [MitraTally(m.mitra_id, m.display_name, _without_unmatched(m.tally)) for m in found],
            key=lambda m: (m.display_name, m.mitra_id),
        )

    def mitra_name(self, mitra_id: str) -> str | None:
        mitra = self._db.table("mitras").get(mitra_id)
        return None if mitra is None else str(mitra["display_name"])

    def statement(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatementSession]:
        requests = self._db.table("pairing_requests")
        transactions = self._db.table("customer_transactions")
        ledger = self._db.table("ledger_entries").values()
        out = []
        for s in self._db.table("sessions").values():
            if s["mitra_id"] != mitra_id or s["status"] != "closed" or not self._in(s.get("closed_at"), starts, ends):
                continue
            request = requests[s["request_id"]]
            t = transactions.get(request.get("transaction_id"))
            paid = t["paid_amount"] if t and t["status"] == "paid" else 0
            refunded = sum(
                e["amount"] for e in ledger if t and e["transaction_id"] == t["id"] and e["kind"] == "refund"
            )
            out.append(
                StatementSession(
                    session_id=s["id"],
                    kind=s["kind"],
                    tier_id=request.get("tier_id"),
                    started_at=s["started_at"],
                    closed_at=s["closed_at"],
                    run_s=self._run_s(s),
                    paid_s=request["duration_s"] if s["kind"] == "paid" else 0,
                    extensions=0,
                    paid_amount=paid,
                    refunded=refunded,
                )
            )
        return sorted(out, key=lambda s: (s.closed_at, s.session_id))


def _tally(part: dict[str, float]) -> Tally:
    return Tally(
        sessions=int(part.get("sessions", 0)),
        session_s=float(part.get("session_s", 0)),
        payments=int(part.get("payments", 0)),
        revenue=int(part.get("revenue", 0)),
        refund_count=int(part.get("refund_count", 0)),
        refunded=int(part.get("refunded", 0)),
        requests_finished=int(part.get("requests_finished", 0)),
        matched=int(part.get("matched", 0)),
        no_mitra=int(part.get("no_mitra", 0)),
        wait_s=float(part.get("wait_s", 0)),
    )


def _without_unmatched(tally: Tally) -> Tally:
    """A mitra is counted only the requests matched to them (as the SQL does)."""
    return Tally(**{**tally.__dict__, "requests_finished": 0, "no_mitra": 0})
