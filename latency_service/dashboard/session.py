"""Dashboard sign-in: a token kept in a cookie, checked like the Authorization header."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from latency_api.schemas.enums import Scope
from latency_service.addresses import is_loopback
from latency_service.auth.service import Principal, require
from latency_service.deps import ReadSessionDep, SettingsDep, bearer_scheme, principal_for
from latency_service.errors import NotAuthenticated

COOKIE = "hwlat_dashboard"
PREFIX = "/dashboard"


class LoginRequired(Exception):
    """No valid cookie on a page: answered with a redirect to the login form."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.next_path = next_path
        self.reason = reason


def cookie_is_secure(request: Request) -> bool:
    """Secure except for plain HTTP on loopback, where a browser would drop a Secure cookie."""
    return request.url.scheme == "https" or not is_loopback(request.url.hostname)


def authorization(request: Request) -> str | None:
    """The header if a client sent one (scripts, curl), else the dashboard cookie as one."""
    header = request.headers.get("authorization")
    if header is not None:
        return header
    token = request.cookies.get(COOKIE)
    return f"Bearer {token}" if token else None


def safe_next(path: str | None) -> str:
    """Only paths inside the dashboard: a login link must not redirect anywhere else."""
    if path and path.startswith(PREFIX) and not path.startswith("//") and "\\" not in path:
        return path
    return PREFIX


def login_url(next_path: str) -> str:
    return f"{PREFIX}/login?next={quote(safe_next(next_path), safe='/')}"


def _page_principal(request: Request, session: ReadSessionDep, settings: SettingsDep) -> Principal:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    value = authorization(request)
    if value is None and not settings.auth_disabled:
        raise LoginRequired(here)
    try:
        return require(principal_for(request, session, settings, value), Scope.read)
    except NotAuthenticated:
        raise LoginRequired(here, "that token is unknown or revoked; sign in again") from None


_cookie_scheme = APIKeyCookie(
    name=COOKIE, auto_error=False, description="The dashboard's sign-in cookie"
)


def _data_principal(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    # Declared so that OpenAPI shows both ways in; the values are read in authorization().
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    _cookie: Annotated[str | None, Security(_cookie_scheme)],
) -> Principal:
    # Data links answer 401 in the API's error shape rather than a login page.
    return require(principal_for(request, session, settings, authorization(request)), Scope.read)


PageUser = Annotated[Principal, Depends(_page_principal)]
DataUser = Annotated[Principal, Depends(_data_principal)]
