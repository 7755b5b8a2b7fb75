"""What the client raises. No HTTP library types leak out: callers catch these."""

from __future__ import annotations

from typing import Any


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
    """The service answered with an error; ``code`` and ``detail`` are its own words."""

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
            code, detail = "http_error", text[:500]
        for error_class in (LeaseLost, NotFound, AccessDenied):
            if error_class.matches(status, code):
                return error_class(status, code, detail)
        return cls(status, code, detail)

    @classmethod
    def matches(cls, status: int, code: str) -> bool:
        return True


class LeaseLost(ServiceError):
    """The job's lease expired or another agent took it: drop the work and claim again."""

    @classmethod
    def matches(cls, status: int, code: str) -> bool:
        return status == 409 and code == "lease_lost"


class NotFound(ServiceError):
    @classmethod
    def matches(cls, status: int, code: str) -> bool:
        return status == 404


class AccessDenied(ServiceError):
    """No token, an unknown or revoked one (401), or one without the scope needed (403)."""

    @classmethod
    def matches(cls, status: int, code: str) -> bool:
        return status in (401, 403)
