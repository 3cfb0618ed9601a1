"""Cloud Tasks' retry policy: queue defaults, the backoff schedule and when to give up."""

from __future__ import annotations

from datetime import timedelta

from google.cloud import tasks_v2

from emulators.tasks_emulator.errors import invalid

# What Cloud Tasks reports for a queue created without a retry_config.
_DEFAULT_MAX_ATTEMPTS = 100
_DEFAULT_MIN_BACKOFF = timedelta(milliseconds=100)
_DEFAULT_MAX_BACKOFF = timedelta(hours=1)
_DEFAULT_MAX_DOUBLINGS = 16


def with_defaults(config: tasks_v2.RetryConfig | None) -> tasks_v2.RetryConfig:
    """Fill unset fields as Cloud Tasks does; proto3 cannot tell 0 from unset for the integers, nor can it."""
    filled = tasks_v2.RetryConfig(config) if config is not None else tasks_v2.RetryConfig()
    if filled.max_attempts == 0:
        filled.max_attempts = _DEFAULT_MAX_ATTEMPTS
    if filled.max_doublings == 0:
        filled.max_doublings = _DEFAULT_MAX_DOUBLINGS
    if "min_backoff" not in filled:
        filled.min_backoff = _DEFAULT_MIN_BACKOFF
    if "max_backoff" not in filled:
        filled.max_backoff = _DEFAULT_MAX_BACKOFF
    if "max_retry_duration" not in filled:
        filled.max_retry_duration = timedelta(0)
    if filled.max_attempts < -1:
        raise invalid("retry_config.max_attempts must be -1 (unlimited) or positive")
    if filled.max_doublings < 0:
        raise invalid("retry_config.max_doublings must not be negative")
    if filled.min_backoff > filled.max_backoff:
        raise invalid("retry_config.min_backoff must not exceed max_backoff")
    return filled


def retry_delay(config: tasks_v2.RetryConfig, retries_so_far: int) -> float:
    """Seconds until the next attempt: doubling `max_doublings` times, then growing linearly, capped.

    Cloud Tasks' example: min 10 s, max 300 s, 3 doublings → 10, 20, 40, 80, 160, 240, 300, 300 …
    """
    min_backoff = float(config.min_backoff.total_seconds())
    doublings = int(config.max_doublings)
    if retries_so_far <= doublings:
        delay = min_backoff * 2.0**retries_so_far
    else:
        delay = min_backoff * 2.0**doublings * (1 + retries_so_far - doublings)
    return min(delay, float(config.max_backoff.total_seconds()))


def gives_up(config: tasks_v2.RetryConfig, attempts: int, since_first_attempt: float) -> bool:
    """Cloud Tasks stops only when both limits are reached; an unlimited one (-1 / 0 s) is left out of it."""
    attempts_limited = config.max_attempts != -1
    max_duration = config.max_retry_duration.total_seconds()
    if not attempts_limited and max_duration <= 0:
        return False
    attempts_done = not attempts_limited or attempts >= config.max_attempts
    duration_done = max_duration <= 0 or since_first_attempt >= max_duration
    return attempts_done and duration_done
