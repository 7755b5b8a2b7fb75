"""Domain errors. They carry no HTTP; ``latency_service.http_errors`` maps them in one place.
Their codes are the wire contract's ``ErrorCode``, which the client reads."""

from __future__ import annotations

from typing import ClassVar

from latency_api.schemas.enums import ErrorCode


class DomainError(Exception):
    """Base of every error the service reports to a client; ``code`` is machine-readable."""

    code: ClassVar[ErrorCode] = ErrorCode.error

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = ErrorCode.not_found


class Conflict(DomainError):
    code = ErrorCode.conflict


class InvalidInput(DomainError):
    code = ErrorCode.invalid_input


class BatchTooLarge(DomainError):
    code = ErrorCode.batch_too_large


class IdempotencyKeyReused(DomainError):
    code = ErrorCode.idempotency_key_reused


class NotAuthenticated(DomainError):
    code = ErrorCode.not_authenticated


class Forbidden(DomainError):
    code = ErrorCode.forbidden


class LeaseLost(Conflict):
    code = ErrorCode.lease_lost


class DatabaseUnavailable(DomainError):
    """The database does not answer; the request can be repeated once it is back."""

    code = ErrorCode.database_unavailable


class TooManyAttempts(DomainError):
    """Too many failed authentications from one address; ``retry_after_s`` says when to retry."""

    code = ErrorCode.too_many_attempts

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
