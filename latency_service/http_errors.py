"""The one place where domain errors become HTTP answers: ``{"error", "detail"}``."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from latency_api.schemas.common import ErrorOut
from latency_api.schemas.enums import ErrorCode
from latency_service import errors
from latency_service.db_errors import bad_data, is_bad_data, is_unavailable, unavailable

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
    errors.TooManyAttempts: 429,
}

# Starlette's own HTTP errors (unknown route, wrong method, body over the limit) in the
# contract's words.
HTTP_CODES = {
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    413: ErrorCode.body_too_large,
}


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Every error answer any route can give, documented with the contract's shape so that the
# OpenAPI schema describes what clients really get (FastAPI's default 422 shape is not ours).
GENERAL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _documented("A body that cannot be read (not UTF-8, not the declared type)"),
    413: _documented("Request body over HWLAT_MAX_BODY_BYTES"),
    422: _documented("Invalid input: what is wrong and how to fix it"),
    503: _documented("The database does not answer; repeat the request later"),
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _documented("No token, or an unknown or revoked one"),
    403: _documented("The token's scope is not enough"),
    404: _documented("No such resource"),
    409: _documented("Conflicts with the stored state"),
    429: _documented("Too many failed authentications from this address; see Retry-After"),
}
ERROR_RESPONSES = {**AUTH_ERRORS, **GENERAL_ERRORS}


def error_body(code: ErrorCode, detail: str) -> dict[str, str]:
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
        return domain_response(exc)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        if is_unavailable(exc):
            # Logged without the statement: its parameters may hold secrets' hashes or data.
            log.warning("database unavailable: %s", type(exc).__name__)
            return domain_response(unavailable(exc))
        if is_bad_data(exc):
            return domain_response(bad_data(exc))
        return unexpected(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(ErrorCode.validation_error, describe_validation_errors(exc.errors())), 422
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return unexpected(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, ErrorCode.http_error)
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


def domain_response(exc: errors.DomainError) -> JSONResponse:
    headers = None
    if isinstance(exc, errors.NotAuthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, errors.TooManyAttempts):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return JSONResponse(error_body(exc.code, exc.detail), status_of(exc), headers=headers)


def unexpected(exc: Exception) -> JSONResponse:
    # A bug: logged with its traceback by the server, answered in the contract's shape.
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        error_body(
            ErrorCode.internal_error, f"unexpected {type(exc).__name__}; see the service log"
        ),
        500,
    )


def body_too_large_detail(limit: int) -> str:
    return (
        f"request body over the limit of {limit} bytes (HWLAT_MAX_BODY_BYTES); split it into "
        "smaller requests"
    )
