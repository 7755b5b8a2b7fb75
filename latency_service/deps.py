"""FastAPI dependencies and their ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

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
from latency_service.errors import NotAuthenticated
from latency_service.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for requests that only read: on SQLite its transaction takes no write lock."""
    # Bound to the engine with the read-only option, so no connection is taken until a
    # query needs one (a predict answered from caches needs none).
    with request.app.state.read_session_factory() as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# Declared for the OpenAPI security scheme; the raw header is read so that a malformed one gets
# its own message rather than looking missing.
_bearer = HTTPBearer(auto_error=False, description="API token from `hwlat token create`")


def _principal(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    if settings.auth_disabled:
        return LOCAL_PRINCIPAL
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else "unknown"
    throttle.check(address)
    header = request.headers.get("authorization")
    cache: TokenCache = request.app.state.token_cache
    try:
        secret = bearer_secret(header)
        principal = cache.get(secret)
        if principal is None:
            principal = authenticate(session, secret)
            cache.put(secret, principal)
    except NotAuthenticated:
        # A missing header is no guess; a wrong, revoked or malformed token is.
        if header:
            throttle.failed(address)
        raise
    return principal


def scoped(scope: Scope) -> Callable[..., Principal]:
    def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        return require(principal, scope)

    return dependency


ReadToken = Annotated[Principal, Depends(scoped(Scope.read))]
IngestToken = Annotated[Principal, Depends(scoped(Scope.ingest))]
AdminToken = Annotated[Principal, Depends(scoped(Scope.admin))]
