"""Who a verified Firebase user is to us: PostgreSQL decides, not the token's claims.

Claims only say what was true when the token was minted; a suspension, a deactivation or a takeover must take
effect at once. A deactivated mitra simply has no role any more. The lookup is one indexed statement, cached per
instance for a few seconds (HALO_IDENTITY_CACHE_S) so the chat path does not pay a round trip per message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from shared.adapters.postgres.database import Database
from shared.domain.roles import Role


@dataclass(frozen=True)
class Identity:
    role: Role | None
    account_id: str | None
    suspended: bool


NOBODY = Identity(role=None, account_id=None, suspended=False)

_cache: dict[str, tuple[float, Identity]] = {}
_lock = threading.Lock()


def resolve(db: Database, uid: str, ttl_s: float) -> Identity:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(uid)
    if cached and cached[0] > now:
        return cached[1]
    found = lookup(db, uid)
    with _lock:
        _cache[uid] = (now + ttl_s, found)
    return found


def forget(uid: str) -> None:
    """Drop this instance's cached identity after changing it here."""
    with _lock:
        _cache.pop(uid, None)


def lookup(db: Database, uid: str) -> Identity:
    row = db.read_one(
        """SELECT role, account_id, suspended FROM (
               SELECT 'admin' AS role, id::text AS account_id, false AS suspended, 1 AS rank
                 FROM admins WHERE firebase_uid = :uid
               UNION ALL SELECT 'mitra', id::text, false, 2 FROM mitras WHERE firebase_uid = :uid AND active
               UNION ALL SELECT 'client', id::text, suspended_at IS NOT NULL, 3 FROM clients WHERE firebase_uid = :uid
           ) AS known ORDER BY rank LIMIT 1""",
        {"uid": uid},
    )
    if row is None:
        return NOBODY
    return Identity(role=Role(row["role"]), account_id=row["account_id"], suspended=bool(row["suspended"]))
