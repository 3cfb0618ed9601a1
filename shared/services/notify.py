"""Push notifications: each (notification, person) is sent once, to every device they registered; dead tokens pruned."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from shared.adapters.fcm import FcmSender, PushMessage, PushResult
from shared.adapters.postgres.database import Database
from shared.errors import Unavailable


@dataclass(frozen=True)
class Notification:
    dedup_key: str
    recipients: list[str]
    data: dict[str, str]
    title: str | None = None
    body: str | None = None


def register_device(db: Database, uid: str, token: str, platform: str) -> None:
    """A token belongs to the last user who registered it: a resold phone stops getting the old user's pushes."""
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO devices (token, firebase_uid, platform) VALUES (:token, :uid, :platform)
               ON CONFLICT (token) DO UPDATE SET firebase_uid = EXCLUDED.firebase_uid,
                   platform = EXCLUDED.platform, last_seen_at = now()""",
            {"token": token, "uid": uid, "platform": platform},
        )


def deliver(db: Database, fcm: FcmSender, notification: Notification) -> int:
    """Returns the number of messages sent. Recipients whose every device failed transiently are released and the
    call raises, so Pub/Sub redelivers and only they are tried again."""
    with db.transaction() as tx:
        fresh = [
            row["firebase_uid"]
            for row in tx.all(
                """INSERT INTO push_log (dedup_key, firebase_uid)
                   SELECT :key, uid FROM unnest(CAST(:uids AS text[])) AS uid
                   ON CONFLICT DO NOTHING RETURNING firebase_uid""",
                {"key": notification.dedup_key, "uids": notification.recipients},
            )
        ]
        devices = tx.all(
            "SELECT token, firebase_uid FROM devices WHERE firebase_uid = ANY(CAST(:uids AS text[]))", {"uids": fresh}
        )
        shown = {"title": notification.title, "body": notification.body or ""} if notification.title else None
        results = fcm.send_many(
            [PushMessage(token=row["token"], data=notification.data, notification=shown) for row in devices]
        )
        outcome: dict[str, set[PushResult]] = defaultdict(set)
        for row, result in zip(devices, results, strict=True):
            outcome[row["firebase_uid"]].add(result)
        dead = [row["token"] for row, result in zip(devices, results, strict=True) if result is PushResult.UNREGISTERED]
        if dead:
            tx.execute("DELETE FROM devices WHERE token = ANY(CAST(:tokens AS text[]))", {"tokens": dead})
        retry = [
            uid
            for uid, results_of in outcome.items()
            if PushResult.FAILED in results_of and PushResult.SENT not in results_of
        ]
        if retry:
            tx.execute(
                "DELETE FROM push_log WHERE dedup_key = :key AND firebase_uid = ANY(CAST(:uids AS text[]))",
                {"key": notification.dedup_key, "uids": retry},
            )
    if retry:
        raise Unavailable(f"push failed for {len(retry)} recipients; retrying")
    return sum(1 for result in results if result is PushResult.SENT)
