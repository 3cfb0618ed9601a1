"""Rules about accounts: names people choose, how sign-ins may be used, what a mitra sees of a client."""

from __future__ import annotations

import unicodedata

from shared.domain.config import AnonymityMode

NAME_MIN, NAME_MAX = 2, 40
# How clients may sign in; mitras use phone OTP only; admins email/password.
CLIENT_PROVIDERS = frozenset({"google.com", "apple.com", "phone"})
MITRA_PROVIDER = "phone"
# Taking over a profile needs proof of a fresh sign-in (a new OTP or IdP round trip).
TAKEOVER_MAX_AUTH_AGE_S = 300


class InvalidName(ValueError):
    pass


def clean_display_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise InvalidName("must not contain control or invisible characters")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidName(f"must be {NAME_MIN}-{NAME_MAX} characters after trimming")
    return name


def alias(alias_number: int) -> str:
    return f"Bestie #{alias_number}"


def name_for_mitra(*, display_name: str, anonymous: bool, alias_number: int, mode: AnonymityMode) -> str:
    """What a mitra is shown of a client, in offers, sessions and transcripts alike."""
    if mode is AnonymityMode.ALIAS or anonymous:
        return alias(alias_number)
    return display_name


def takeover_allowed(auth_time: int, now: float) -> bool:
    return 0 <= now - auth_time <= TAKEOVER_MAX_AUTH_AGE_S
