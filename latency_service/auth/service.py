"""Creating and checking API tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.auth.tables import ApiToken
from latency_service.errors import Forbidden, InvalidInput, NotAuthenticated

TOKEN_PREFIX = "hwlat_"


class Scope(IntEnum):
    """Each scope includes the ones below it: an admin token may also ingest and read."""

    read = 1
    ingest = 2
    admin = 3

    @classmethod
    def parse(cls, name: str) -> Scope:
        try:
            return cls[name]
        except KeyError:
            raise InvalidInput(
                f"unknown scope {name!r}; choose one of {', '.join(s.name for s in cls)}"
            ) from None


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int | None
    name: str
    scope: Scope


LOCAL_PRINCIPAL = Principal(token_id=None, name="local (auth disabled)", scope=Scope.admin)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, name: str, scope: Scope) -> str:
    """Store a new token and return its secret; only the hash is kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=hash_token(secret), scope=scope.name))
    session.commit()
    return secret


def authenticate(session: Session, authorization: str | None) -> Principal:
    if not authorization:
        raise NotAuthenticated("missing Authorization header; send 'Authorization: Bearer <token>'")
    kind, _, secret = authorization.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise NotAuthenticated("malformed Authorization header; expected 'Bearer <token>'")
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(secret.strip()))
    )
    if token is None or token.revoked_at is not None:
        raise NotAuthenticated("unknown or revoked token; create one with `hwlat token create`")
    return Principal(token_id=token.id, name=token.name, scope=Scope[token.scope])


def require(principal: Principal, scope: Scope) -> Principal:
    if principal.scope < scope:
        raise Forbidden(
            f"token {principal.name!r} has scope {principal.scope.name!r}; this needs "
            f"{scope.name!r} or higher"
        )
    return principal


class TokenCache:
    """Recently verified tokens, so that hot read paths (predict) skip the database.

    Entries live ``ttl_s`` seconds: a token revoked in the database stops working within
    that time in every worker. Only successful checks are cached.
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, header: str | None) -> Principal | None:
        if header is None:
            return None
        found = self._entries.get(header)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, header: str | None, principal: Principal) -> None:
        if header is None:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[header] = (principal, time.monotonic() + self._ttl_s)
