"""The one place where domain errors become HTTP answers: ``{"error", "detail"}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from latency_service import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.DomainError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.IdempotencyKeyReused: 409,
    errors.InvalidInput: 422,
    errors.BatchTooLarge: 413,
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.DatabaseUnavailable: 503,
}


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def status_of(error: errors.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def describe_validation_errors(raw: list[dict[str, Any]] | Any) -> str:
    """``body.measurements.3.median_ms: Input should be greater than 0`` for each error."""
    parts = []
    for item in list(raw)[:5]:
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    more = len(list(raw)) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def _domain(_: Request, exc: errors.DomainError) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.NotAuthenticated) else None
        )
        return JSONResponse(error_body(exc.code, exc.detail), status_of(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body("validation_error", describe_validation_errors(exc.errors())), 422
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug: logged with its traceback by the server, answered in the contract's shape.
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal_error", f"unexpected {type(exc).__name__}; see the service log"),
            500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)
