"""Which mitras may be offered a request right now, as one SQL fragment shared by pairing and the control center."""

from __future__ import annotations

from typing import Any

from shared.domain.config import AppConfig

# Online, heartbeat fresh, active, below capacity: who is offered a request right now.
AVAILABLE_MITRAS = """
    SELECT m.id, m.firebase_uid FROM mitras m
    WHERE m.active AND m.presence = 'online' AND m.firebase_uid IS NOT NULL
      AND m.last_heartbeat_at > now() - make_interval(secs => :grace_s)
      AND (SELECT count(*) FROM sessions s WHERE s.mitra_id = m.id AND s.status IN ('active', 'closing'))
          < :max_clients
"""


def available_params(config: AppConfig) -> dict[str, Any]:
    """The parameters AVAILABLE_MITRAS takes."""
    return {"grace_s": config.heartbeat_grace_s, "max_clients": config.max_concurrent_clients}
