"""The audit trail: who changed what, when, from which value to which."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.postgres.database import Tx


def record(tx: Tx, *, actor_uid: str, actor_role: str, action: str, target: str, old: Any, new: Any) -> None:
    tx.execute(
        """INSERT INTO audit_log (actor_uid, actor_role, action, target, old_value, new_value)
           VALUES (:uid, :role, :action, :target, CAST(:old AS jsonb), CAST(:new AS jsonb))""",
        {"uid": actor_uid, "role": actor_role, "action": action, "target": target,
         "old": json.dumps(old, default=str), "new": json.dumps(new, default=str)},
    )  # fmt: skip
