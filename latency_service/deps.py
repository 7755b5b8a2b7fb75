"""FastAPI dependencies and their ``Annotated`` aliases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from latency_api.schemas.common import MAX_ID
from latency_api.schemas.enums import Scope
from latency_service.auth.service import (
    LOCAL_PRINCIPAL,
    Principal,
    TokenCache,
    authenticate,
    bearer_secret,
    require,
)
from latency_service.auth.throttle import FailedAuthThrottle
from latency_service.db_errors import is_unavailable
from latency_service.errors import NotAuthenticated
from latency_service.settings import Settings

log = logging.getLogger(__name__)


# The dependencies below are coroutines wherever they need no I/O: FastAPI runs every plain
# function dependency in a worker thread, and those hand-offs were most of the cost of a
# predict answered from caches. Database work still happens in worker threads.


async def get_session(request: Request) -> AsyncIterator[Session]:
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        await _close_off_loop(session)


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """A session for requests that only read: on SQLite its transaction takes no write lock."""
    # Bound to the engine with the read-only option, so no connection is taken until a
    # query needs one (a predict answered from caches needs none).
    session = request.app.state.read_session_factory()
    try:
        yield session
    finally:
        await _close_off_loop(session)


async def _close_off_loop(session: Session) -> None:
    if session.in_transaction():
        await run_in_threadpool(_close, session)  # a rollback: database I/O
    else:
        _close(session)  # nothing was asked of the database: no I/O


def _close(session: Session) -> None:
    """Close after the answer is decided (often already sent). A connection the database
    dropped meanwhile fails the closing rollback; there is nothing left to roll back then, and
    raising would cut off an answer that is right."""
    try:
        session.close()
    except SQLAlchemyError as error:
        if not is_unavailable(error):
            raise
        log.warning("session closed on a lost database connection: %s", type(error).__name__)


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# Ids in paths and filters, in the stores' 32-bit range (a larger one is a 422, not a 500).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
IdQuery = Annotated[int, Query(ge=1, le=MAX_ID)]

SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# Declared for the OpenAPI security scheme; the raw header is read so that a malformed one gets
# its own message rather than looking missing.
bearer_scheme = HTTPBearer(auto_error=False, description="API token from `hwlat token create`")


def principal_for(
    request: Request, session: Session, settings: Settings, authorization: str | None
) -> Principal:
    """Who sends this ``Authorization`` value: one check, one cache and one throttle for every
    way in (the header, the dashboard's cookie, a protected /metrics). May query the database:
    call it off the event loop."""
    if settings.auth_disabled:
        return LOCAL_PRINCIPAL
    cached = _cached_principal(request, authorization)
    if cached is not None:
        return cached
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    address = _address(request)
    try:
        secret = bearer_secret(authorization)
        principal = authenticate(session, secret)
    except NotAuthenticated:
        # A missing header is no guess; a wrong, revoked or malformed token is.
        if authorization:
            throttle.failed(address)
        raise
    request.app.state.token_cache.put(secret, principal)
    return principal


def _cached_principal(request: Request, authorization: str | None) -> Principal | None:
    """The principal of a recently verified token, after the client's throttle check; no I/O."""
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    throttle.check(_address(request))
    if not authorization:
        return None
    kind, _, secret = authorization.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        return None
    cache: TokenCache = request.app.state.token_cache
    return cache.get(secret.strip())


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _principal(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Principal:
    if settings.auth_disabled:
        return LOCAL_PRINCIPAL
    header = request.headers.get("authorization")
    # A token verified moments ago is answered on the event loop; only a check that needs the
    # database goes to a worker thread.
    cached = _cached_principal(request, header)
    if cached is not None:
        return cached
    principal: Principal = await run_in_threadpool(
        principal_for, request, session, settings, header
    )
    return principal


def scoped(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        return require(principal, scope)

    return dependency


ReadToken = Annotated[Principal, Depends(scoped(Scope.read))]
IngestToken = Annotated[Principal, Depends(scoped(Scope.ingest))]
AdminToken = Annotated[Principal, Depends(scoped(Scope.admin))]
