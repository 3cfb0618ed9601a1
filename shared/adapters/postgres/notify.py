"""Push notifications' SQL: devices and their tokens, and the log that sends each notification once per person."""

from __future__ import annotations

from collections.abc import Sequence

from shared.adapters.postgres.sql import Sql
from shared.domain import texts
from shared.domain.notify import Device


class NotifyRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def register_device(self, token: str, uid: str, platform: str) -> None:
        """A token belongs to the last user who registered it: a resold phone stops getting the old user's pushes."""
        self._sql.execute(
            """INSERT INTO devices (token, firebase_uid, platform) VALUES (:token, :uid, :platform)
               ON CONFLICT (token) DO UPDATE SET firebase_uid = EXCLUDED.firebase_uid,
                   platform = EXCLUDED.platform, last_seen_at = now()""",
            {"token": token, "uid": uid, "platform": platform},
        )

    def claim_pushes(self, dedup_key: str, uids: Sequence[str]) -> list[str]:
        """The recipients not yet sent this notification, now marked as sent it: once per (dedup key, recipient),
        however often the event is delivered (`push_log`'s primary key)."""
        rows = self._sql.all(
            """INSERT INTO push_log (dedup_key, firebase_uid)
               SELECT :key, uid FROM unnest(CAST(:uids AS text[])) AS uid
               ON CONFLICT DO NOTHING RETURNING firebase_uid""",
            {"key": dedup_key, "uids": list(uids)},
        )
        return [row["firebase_uid"] for row in rows]

    def still_offered(self, request_id: str, uids: Sequence[str]) -> list[str]:
        """Of these mitras (by Firebase uid), those the request is offered to right now: their offer open, the request
        still searching."""
        if not uids:
            return []
        rows = self._sql.all(
            """SELECT m.firebase_uid AS uid
               FROM pairing_offers o JOIN pairing_requests r ON r.id = o.request_id JOIN mitras m ON m.id = o.mitra_id
               WHERE o.request_id = CAST(:request AS uuid) AND o.status = 'offered' AND r.status = 'searching'
                 AND m.firebase_uid = ANY(CAST(:uids AS text[]))""",
            {"request": request_id, "uids": list(uids)},
        )
        return [row["uid"] for row in rows]

    def release_pushes(self, dedup_key: str, uids: Sequence[str]) -> None:
        """These recipients were not reached after all: a redelivery tries them again."""
        if uids:
            self._sql.execute(
                "DELETE FROM push_log WHERE dedup_key = :key AND firebase_uid = ANY(CAST(:uids AS text[]))",
                {"key": dedup_key, "uids": list(uids)},
            )

    def devices_of(self, uids: Sequence[str]) -> list[Device]:
        if not uids:
            return []
        rows = self._sql.all(
            # The language each device's user reads (an admin's: the default).
            """SELECT d.token, d.firebase_uid AS uid, COALESCE(c.locale, m.locale, :default) AS locale
               FROM devices d
               LEFT JOIN clients c ON c.firebase_uid = d.firebase_uid
               LEFT JOIN mitras m ON m.firebase_uid = d.firebase_uid
               WHERE d.firebase_uid = ANY(CAST(:uids AS text[]))""",
            {"uids": list(uids), "default": texts.DEFAULT_LOCALE},
        )
        return [Device(**row) for row in rows]

    def prune_devices(self, tokens: Sequence[str]) -> None:
        """Tokens no app answers to any more."""
        if tokens:
            self._sql.execute(
                "DELETE FROM devices WHERE token = ANY(CAST(:tokens AS text[]))", {"tokens": list(tokens)}
            )

    def forget_devices_of(self, uid: str) -> None:
        """Every token of a person (a token addresses their phone)."""
        self._sql.execute("DELETE FROM devices WHERE firebase_uid = :uid", {"uid": uid})
