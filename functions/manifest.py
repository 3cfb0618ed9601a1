"""The single list of deployed functions, their triggers, topics and queues.

main.py, the local gateway, the emulators' Pub/Sub and Cloud Tasks wiring and infra/ are all checked against
this table. Importing it must stay cheap: main.py reads it on every cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Trigger = Literal["http", "admin", "webhook", "task", "pubsub"]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    module: str
    trigger: Trigger
    topic: str | None = None
    queue: str | None = None
    # Cron for Pub/Sub functions that Cloud Scheduler triggers.
    schedule: str | None = None
    # Keeps a warm instance (infra/functions.tf: the class's min_instances; every other function scales to zero).
    # Only for the app-facing steps a person waits on in a session: see the note above FUNCTIONS.
    warm: bool = False


@dataclass(frozen=True)
class QueueSpec:
    name: str
    max_attempts: int
    min_backoff_s: float
    max_backoff_s: float
    max_doublings: int


# Warm instances (issue 26, the bill; docs/operations.md "Warm instances"). One costs ~$9.7 a month at the idle rate
# (bench/cost.py); a cold start costs the person waiting on it some 2.5-6 s (bench/REPORT.md, cold_reply). Warm only
# where a person in a session waits on the answer and the wait hurts: asking for a mitra and the mitra's accept (the
# client waits to be heard), a message (chat_send: the conversation itself, the crisis path), and the extension asked
# and answered while the session's clock runs. The rest scale to zero: typing and read receipts are cosmetic and come
# beside chat_sends of the same session (the first of a quiet hour is late, nothing is lost); heartbeats are
# background calls nobody watches, which online mitras keep warm by themselves; sign-up, profile, checkout (Xendit's
# page is the slow part), history and lists are one-off, before or after a session; timers, events, the webhook and
# the control center never had one.
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("client_register", "functions.accounts", "http"),
    FunctionSpec("client_profile", "functions.accounts", "http"),
    FunctionSpec("client_history_confirm", "functions.accounts", "http"),
    FunctionSpec("mitra_login", "functions.accounts", "http"),
    FunctionSpec("pricing_quote", "functions.pricing", "http"),
    FunctionSpec("mitra_set_status", "functions.presence", "http"),
    FunctionSpec("mitra_heartbeat", "functions.presence", "http"),
    FunctionSpec("presence_sweep", "functions.presence", "pubsub", topic="presence-sweep", schedule="* * * * *"),
    FunctionSpec("pairing_request", "functions.pairing", "http", warm=True),
    FunctionSpec("pairing_cancel", "functions.pairing", "http"),
    FunctionSpec("pairing_accept", "functions.pairing", "http", warm=True),
    FunctionSpec("pairing_decline", "functions.pairing", "http"),
    FunctionSpec("on_pairing_requested", "functions.pairing", "pubsub", topic="pairing-requested"),
    FunctionSpec("task_pairing_timeout", "functions.pairing", "task", queue="pairing-timeouts"),
    # Issue 24: a past mitra's preference window ends; a mitra's session closed (a slot is free).
    FunctionSpec("task_pairing_widen", "functions.pairing", "task", queue="pairing-timeouts"),
    FunctionSpec("on_mitra_slot_freed", "functions.pairing", "pubsub", topic="mitra-slot-freed"),
    FunctionSpec("billing_checkout", "functions.billing", "http"),
    FunctionSpec("xendit_webhook", "functions.billing_webhook", "webhook"),
    FunctionSpec("task_payment_timeout", "functions.billing", "task", queue="payment-timeouts"),
    FunctionSpec("admin_refund", "functions.billing", "admin"),
    FunctionSpec("admin_payment_events", "functions.billing", "admin"),
    # A refund whose callback was lost is settled by asking Xendit; every 15 minutes is soon enough for money back.
    FunctionSpec("refund_sweep", "functions.billing_sweep", "pubsub", topic="refund-sweep", schedule="*/15 * * * *"),
    FunctionSpec("chat_send", "functions.chat", "http", warm=True),
    FunctionSpec("chat_receipts", "functions.chat", "http"),
    FunctionSpec("chat_typing", "functions.chat", "http"),
    FunctionSpec("sessions_list", "functions.chat", "http"),
    FunctionSpec("chat_history", "functions.chat", "http"),
    FunctionSpec("session_transcript", "functions.chat", "http"),
    FunctionSpec("admin_dashboard", "functions.admin_dashboard", "admin"),
    FunctionSpec("admin_mitras", "functions.admin_mitras", "admin"),
    FunctionSpec("admin_users", "functions.admin_users", "admin"),
    FunctionSpec("admin_config", "functions.admin_config", "admin"),
    FunctionSpec("admin_sessions", "functions.admin_sessions", "admin"),
    FunctionSpec("admin_session_transcript", "functions.admin_sessions", "admin"),
    FunctionSpec("admin_session_end", "functions.admin_sessions", "admin"),
    FunctionSpec("admin_audit", "functions.admin_audit", "admin"),
    FunctionSpec("admin_mitra_logs", "functions.admin_mitras", "admin"),
    FunctionSpec("admin_mitra_relinks", "functions.admin_mitras", "admin"),
    FunctionSpec("admin_admins", "functions.admin_admins", "admin"),
    FunctionSpec("admin_blocks", "functions.blocks", "admin"),
    # Reports (issue 24): per day and per mitra over a range, and a mitra's monthly earnings statement.
    FunctionSpec("admin_statistics", "functions.admin_statistics", "admin"),
    FunctionSpec("admin_mitra_statement", "functions.admin_statistics", "admin"),
    FunctionSpec("session_end", "functions.lifecycle", "http"),
    FunctionSpec("session_goodbye", "functions.lifecycle", "http"),
    FunctionSpec("extension_request", "functions.lifecycle", "http", warm=True),
    FunctionSpec("extension_respond", "functions.lifecycle", "http", warm=True),
    FunctionSpec("task_session_warning", "functions.lifecycle", "task", queue="session-timers"),
    FunctionSpec("task_session_expire", "functions.lifecycle", "task", queue="session-timers"),
    FunctionSpec("task_session_close", "functions.lifecycle", "task", queue="session-timers"),
    FunctionSpec("task_extension_timeout", "functions.lifecycle", "task", queue="extension-timeouts"),
    FunctionSpec("devices_register", "functions.notify", "http"),
    FunctionSpec("on_notify", "functions.notify", "pubsub", topic="notify"),
    FunctionSpec("on_chat_message", "functions.chat_events", "pubsub", topic="chat-messages"),
    FunctionSpec("admin_alerts", "functions.safety", "admin"),
    FunctionSpec("admin_client_data", "functions.privacy", "admin"),
    FunctionSpec("client_data_export", "functions.privacy", "http"),
    FunctionSpec("client_account_delete", "functions.privacy", "http"),
    # Daily at 03:15 (scheduler_time_zone: Jakarta), when the service is quietest.
    FunctionSpec("retention_sweep", "functions.privacy", "pubsub", topic="retention-sweep", schedule="15 3 * * *"),
    FunctionSpec("outbox_sweep", "functions.outbox", "pubsub", topic="outbox-sweep", schedule="* * * * *"),
    # Idempotency keys live 24 hours; an hourly sweep keeps the table to about a day of keyed calls.
    FunctionSpec(
        "idempotency_sweep", "functions.idempotency", "pubsub", topic="idempotency-sweep", schedule="25 * * * *"
    ),
    FunctionSpec("task_project_outbox", "functions.outbox", "task", queue="outbox-retry"),
    # Issue 25 (payment history and receipts).
    FunctionSpec("billing_history", "functions.billing_history", "http"),
    FunctionSpec("billing_receipt", "functions.billing_history", "http"),
    # After a session and safety between people (issue 25).
    FunctionSpec("session_feedback", "functions.feedback", "http"),
    FunctionSpec("admin_feedback", "functions.feedback", "admin"),
    FunctionSpec("admin_feedback_comments", "functions.feedback", "admin"),
    FunctionSpec("mitra_notes", "functions.notes", "http"),
    FunctionSpec("admin_session_notes", "functions.notes", "admin"),
    FunctionSpec("session_report", "functions.reports", "http"),
    FunctionSpec("admin_reports", "functions.reports", "admin"),
    FunctionSpec("blocks", "functions.blocks", "http"),
)

QUEUES: tuple[QueueSpec, ...] = (
    # Timers must fire: many quick retries (an early or failed firing retries within a second or two).
    QueueSpec("session-timers", max_attempts=100, min_backoff_s=0.2, max_backoff_s=10, max_doublings=4),
    QueueSpec("extension-timeouts", max_attempts=50, min_backoff_s=0.5, max_backoff_s=30, max_doublings=4),
    QueueSpec("pairing-timeouts", max_attempts=50, min_backoff_s=0.5, max_backoff_s=30, max_doublings=4),
    # A payment timeout retries while Xendit is unreachable; Xendit's own expiry callback is the fallback.
    QueueSpec("payment-timeouts", max_attempts=50, min_backoff_s=1, max_backoff_s=60, max_doublings=5),
    QueueSpec("outbox-retry", max_attempts=20, min_backoff_s=0.5, max_backoff_s=60, max_doublings=6),
)

BY_NAME = {spec.name: spec for spec in FUNCTIONS}


def topics() -> list[str]:
    return sorted({spec.topic for spec in FUNCTIONS if spec.topic})
