"""Domain errors. They carry no HTTP; ``latency_service.http_errors`` maps them in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the service reports to a client; ``code`` is machine-readable."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"


class BatchTooLarge(DomainError):
    code = "batch_too_large"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class Forbidden(DomainError):
    code = "forbidden"


class LeaseLost(Conflict):
    code = "lease_lost"


class DatabaseUnavailable(DomainError):
    """The database does not answer; the request can be repeated once it is back."""

    code = "database_unavailable"


class TooManyAttempts(DomainError):
    """Too many failed authentications from one address; ``retry_after_s`` says when to retry."""

    code = "too_many_attempts"

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
