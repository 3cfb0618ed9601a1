"""What on-call needs to see at a glance: work the backend owes the outside world and people still waiting on a
human. Reported by the outbox sweep every minute (the log line the alert policies read, infra/monitoring.tf) and shown
on the control center's dashboard."""

from __future__ import annotations

from dataclasses import dataclass

# An outbox row that has failed this often is stuck, not merely late: someone should look.
STUCK_AFTER_ATTEMPTS = 5
# A crisis alert nobody has acknowledged for this long pages the on-call admin.
UNACKNOWLEDGED_AFTER_S = 300
# The outbox is behind when its oldest pending row is older than this.
OUTBOX_BEHIND_S = 300


@dataclass(frozen=True)
class Health:
    outbox_pending: int
    oldest_unpublished_s: float
    # Outbox rows failing again and again (a topic gone, data Firestore refuses): the backend's own dead letters.
    outbox_stuck: int
    payments_quarantined: int
    unacknowledged_alerts: int

    @property
    def outbox_behind(self) -> bool:
        return self.oldest_unpublished_s > OUTBOX_BEHIND_S
