"""Typed errors with stable codes; the HTTP layer turns them into CONTRACT.md's envelope."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(AppError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message, details={"fields": fields or []})


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"


class Conflict(AppError):
    """409 with a domain code such as `request_open` or `already_taken`."""

    status = 409


class RateLimited(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class PayloadTooLarge(AppError):
    """413: a body over the limit, refused before it is read; `fields` names it and `limit_bytes` says the limit."""

    status = 413
    code = "payload_too_large"

    def __init__(self, message: str, *, field: str, limit_bytes: int) -> None:
        super().__init__(
            message, details={"fields": [{"field": field, "problem": "too large"}], "limit_bytes": limit_bytes}
        )
        self.limit_bytes = limit_bytes


class Unavailable(AppError):
    """A dependency failed; the caller may retry the same request (it is idempotent), after `retry_after_s`
    (the reply's Retry-After header)."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
