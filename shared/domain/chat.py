"""Rules of the conversation itself: what a message may contain, how receipts and typing behave."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from enum import StrEnum

MAX_TEXT = 4000
# Typing is a lease written to the session document: apps show "typing…" until `typing_until` (TTL after the lease
# was written) and hide it when a message from that side arrives after `since`. Typing again renews the lease only
# once it is older than TYPING_RENEW_AFTER, so a chatty keyboard costs one write per participant every few seconds.
TYPING_TTL = timedelta(seconds=8)
TYPING_RENEW_AFTER = timedelta(seconds=6)
# Receipts wait this long for the reader's next session-document write (typing) to carry them; then they go alone.
RECEIPTS_COALESCE = timedelta(seconds=2)
HISTORY_PAGE_MAX = 100


class InvalidText(ValueError):
    pass


class Receipt(StrEnum):
    DELIVERED = "delivered"
    READ = "read"


def clean_text(raw: str) -> str:
    """1-4,000 characters after trimming; newlines and tabs are the only control characters allowed."""
    text = raw.strip()
    if not text:
        raise InvalidText("must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidText(f"must be at most {MAX_TEXT} characters")
    for char in text:
        if char not in "\n\t" and unicodedata.category(char) in {"Cc", "Cs"}:
            raise InvalidText("must not contain control characters")
    return text


def watermarks(receipt: Receipt, seq: int, delivered: int, read: int) -> tuple[int, int]:
    """Receipts only move forward; reading a message implies it was delivered."""
    new_delivered = max(delivered, seq)
    new_read = max(read, seq) if receipt is Receipt.READ else read
    return new_delivered, new_read
