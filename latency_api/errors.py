"""What the client raises. No HTTP library types leak out: callers catch these.

The service's answers name their error with an ``ErrorCode`` (the wire contract); the client
raises the class that code maps to, so callers catch ``LeaseLost``, ``NotFound`` or
``AccessDenied`` instead of comparing strings.
"""

from __future__ import annotations

from typing import Any, ClassVar

from latency_api.schemas.enums import ErrorCode


class HwlatError(Exception):
    """Base of every error the client raises."""


class ServiceUnreachable(HwlatError):
    """The service did not answer (refused, timed out, connection dropped), after retries."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the latency service at {url} does not answer ({reason}); is it running? "
            "(hwlat serve, or set --service / HWLAT_SERVICE_URL)"
        )
        self.url = url
        self.reason = reason


class ServiceError(HwlatError):
    """The service answered with an error; ``code`` and ``detail`` are its own words.

    ``code`` is a plain string: a newer service may send a code this client does not know.
    """

    # The codes this class stands for, and the statuses it stands for when an answer is not
    # in the contract's shape (a proxy's own 404 or 403 page).
    codes: ClassVar[frozenset[ErrorCode]] = frozenset()
    statuses: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail

    @classmethod
    def from_answer(cls, status: int, body: Any, text: str) -> ServiceError:
        """The most specific error for an answer; its body is ``{"error", "detail"}`` unless a
        proxy in between answered instead."""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            code, detail = body["error"], str(body.get("detail", ""))
        else:
            code, detail = ErrorCode.http_error, text[:500]
        return error_class(status, code)(status, code, detail)


class LeaseLost(ServiceError):
    """The job's lease expired or another agent took it: drop the work and claim again."""

    codes = frozenset({ErrorCode.lease_lost})


class NotFound(ServiceError):
    codes = frozenset({ErrorCode.not_found})
    statuses = frozenset({404})


class AccessDenied(ServiceError):
    """No token, an unknown or revoked one (401), or one without the scope needed (403)."""

    codes = frozenset({ErrorCode.not_authenticated, ErrorCode.forbidden})
    statuses = frozenset({401, 403})


SPECIFIC: tuple[type[ServiceError], ...] = (LeaseLost, NotFound, AccessDenied)


def error_class(status: int, code: str) -> type[ServiceError]:
    """The client error an answer with ``status`` and ``code`` is raised as."""
    for specific in SPECIFIC:
        if code in specific.codes:
            return specific
    if code == ErrorCode.http_error:
        for specific in SPECIFIC:
            if status in specific.statuses:
                return specific
    return ServiceError


class JobFailed(HwlatError):
    """A job the caller waited for ended failed, or without the measurements it was queued
    for; the message names the job and says where to look."""


class JobsTimedOut(HwlatError, TimeoutError):
    """Jobs still open after the time the caller would wait (also a ``TimeoutError``)."""
