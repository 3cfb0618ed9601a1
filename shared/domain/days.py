"""The operation's calendar: a day is a day in Jakarta (WIB), whatever the servers' clocks say."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")
# How far back one look at a mitra's history may reach.
MAX_RANGE_DAYS = 92


class InvalidRange(ValueError):
    pass


def today(now: datetime) -> date:
    return now.astimezone(JAKARTA).date()


def starts(day: date) -> datetime:
    """Midnight in Jakarta at the start of `day`."""
    return datetime.combine(day, time(), JAKARTA)


def bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in Jakarta: both days included."""
    if last < first:
        raise InvalidRange("the range ends before it starts")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidRange(f"at most {MAX_RANGE_DAYS} days at a time")
    return starts(first), starts(last + timedelta(days=1))


def rate(part: int, whole: int) -> float | None:
    """A share, or nothing when there is nothing to share out yet."""
    return round(part / whole, 4) if whole else None
