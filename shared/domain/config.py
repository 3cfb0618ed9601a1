"""The operation's settings, as the control center edits them; ranges are business rules."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AnonymityMode(StrEnum):
    # Mitras see the client's display name unless the client chose anonymity.
    CLIENT_CHOICE = "client_choice"
    # Mitras always see a stable alias ("Bestie #4821").
    ALIAS = "alias"


# Letters, digits, spaces and the punctuation of phone numbers and names ("119 ext 8 (SEJIWA), 112"), with a digit.
HOTLINE_PATTERN = r"^[\w ()+,./:;&'-]*[0-9][\w ()+,./:;&'-]*$"


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    free_trial_enabled: bool = True
    free_trial_minutes: int = Field(15, ge=1, le=120)
    extension_timeout_s: int = Field(60, ge=5, le=900)
    early_end_client: bool = True
    early_end_mitra: bool = False
    max_concurrent_clients: int = Field(3, ge=1, le=20)
    pairing_search_window_s: int = Field(60, ge=5, le=900)
    # With nobody available, a request still searches its window (someone may come online) instead of ending
    # `no_mitra` at once (shared.domain.pairing.opening_status).
    wait_when_nobody_online: bool = True
    # A request for a past mitra (`pairing_request.mitra_id`) is offered to that mitra alone this long, then to
    # everyone available (shared.domain.pairing.preference).
    preferred_mitra_first_s: int = Field(60, ge=0, le=900)
    heartbeat_grace_s: int = Field(90, ge=5, le=3600)
    # The heartbeats a second all online mitras together are held to: beyond it each is asked to beat less often
    # (shared.domain.presence.pace), so presence costs the same whatever the number online.
    heartbeats_per_s_max: int = Field(30, ge=1, le=10_000)
    goodbye_window_s: int = Field(60, ge=0, le=600)
    # A client opening requests (or a participant sending messages) faster than this gets 429 with Retry-After.
    pairing_requests_per_hour: int = Field(20, ge=1, le=1000)
    messages_per_minute: int = Field(60, ge=1, le=1000)
    # Abuse limits (docs/contract.md "Abuse limits"): checkouts a client may open per hour (each is a Xendit
    # invoice), and free-trial searches a client may cancel per day (each pushed every online mitra); then 429.
    checkouts_per_hour: int = Field(10, ge=1, le=100)
    free_trial_cancels_per_day: int = Field(3, ge=1, le=50)
    # Reports an account may file per hour (each pushes every admin on duty; shared.domain.reports.report_wait).
    reports_per_hour: int = Field(10, ge=1, le=100)
    # The "5 minutes left, extend?" warning comes this long before the end (at once for shorter sessions).
    session_warning_s: int = Field(300, ge=0, le=3600)
    anonymity_mode: AnonymityMode = AnonymityMode.ALIAS
    payment_expiry_s: int = Field(900, ge=60, le=86_400)
    # Shown to a client in their session when a crisis signal is found: at least one number, printable text only.
    hotline_numbers: str = Field("119 ext 8 (SEJIWA), 112", min_length=3, max_length=200, pattern=HOTLINE_PATTERN)
    # Message texts of sessions closed longer ago than this are erased (the sessions and the ledger stay).
    retention_days: int = Field(365, ge=30, le=3650)
    # The mitra's part of what clients paid for the sessions of a month less refunds (`admin_mitra_statement`,
    # docs/contract.md "Reports"), floored to the whole rupiah.
    mitra_share_percent: int = Field(70, ge=0, le=100)

    @classmethod
    def from_rows(cls, rows: dict[str, Any]) -> AppConfig:
        known = {key: value for key, value in rows.items() if key in cls.model_fields}
        return cls.model_validate(known)
