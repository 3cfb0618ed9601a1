"""Where each Firestore document the apps listen to lives, and the topics fan-out work travels on.

PostgreSQL is the truth; these documents are its projection for the apps' listeners (firestore.rules decides who may
read each). Every write to them is an event (shared/domain/events.py) built by the rules of its area.
"""

from __future__ import annotations

# A push to people's devices (functions/notify.py `on_notify`), sent once per dedup key and person.
NOTIFY_TOPIC = "notify"
# One event per chat message (functions/chat_events.py `on_chat_message`): the recipient's push and, for a client's
# message, the crisis-signal check.
MESSAGE_TOPIC = "chat-messages"
# A request to offer to every available mitra (functions/pairing.py `on_pairing_requested`).
BLAST_TOPIC = "pairing-requested"


def request_path(request_id: str) -> str:
    return f"pairing_requests/{request_id}"


def offer_path(mitra_uid: str, request_id: str) -> str:
    return f"mitras/{mitra_uid}/offers/{request_id}"


def session_path(session_id: str) -> str:
    return f"sessions/{session_id}"


def message_path(session_id: str, message_id: str) -> str:
    return f"{session_path(session_id)}/messages/{message_id}"


def payment_path(transaction_id: str) -> str:
    return f"payments/{transaction_id}"


def alert_path(alert_id: str) -> str:
    return f"admin_alerts/{alert_id}"


def revocation_path(uid: str) -> str:
    """firestore.rules consult it before every read by `uid` (shared.domain.accounts.revocation_document)."""
    return f"revocations/{uid}"
