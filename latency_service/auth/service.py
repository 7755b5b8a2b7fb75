"""Creating, listing, revoking and checking API tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_api.schemas.enums import Scope
from latency_service.auth.tables import ApiToken
from latency_service.db import utcnow
from latency_service.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound

TOKEN_PREFIX = "hwlat_"


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int | None
    name: str
    scope: Scope


LOCAL_PRINCIPAL = Principal(token_id=None, name="local (auth disabled)", scope=Scope.admin)


def parse_scope(name: str) -> Scope:
    try:
        return Scope.parse(name)
    except ValueError as error:
        raise InvalidInput(str(error)) from None


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, name: str, scope: Scope) -> tuple[ApiToken, str]:
    """Store a new token; the row and the secret. Only the hash is kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=hash_token(secret), scope=scope.value)
    session.add(token)
    session.commit()
    return token, secret


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke(session: Session, token_id: int) -> ApiToken:
    """Revoke a token (idempotent: revoking twice keeps the first time)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token with id {token_id}; list them with GET /v1/tokens")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.commit()
    return token


def bearer_secret(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        raise NotAuthenticated("missing Authorization header; send 'Authorization: Bearer <token>'")
    kind, _, secret = authorization.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise NotAuthenticated("malformed Authorization header; expected 'Bearer <token>'")
    return secret.strip()


def authenticate(session: Session, secret: str) -> Principal:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        raise NotAuthenticated("unknown or revoked token; create one with `hwlat token create`")
    return Principal(token_id=token.id, name=token.name, scope=Scope(token.scope))


def require(principal: Principal, scope: Scope) -> Principal:
    if not principal.scope.includes(scope):
        raise Forbidden(
            f"token {principal.name!r} has scope {principal.scope.value!r}; this needs "
            f"{scope.value!r} or higher"
        )
    return principal


class TokenCache:
    """Recently verified tokens, so that hot read paths (predict) skip the database.

    Entries live ``ttl_s`` seconds: a token revoked in the database stops working within that
    time in every worker (at once in the worker that revoked it). Only successful checks are
    cached, keyed by the token's hash so that no secret is kept in memory longer than needed.
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> Principal | None:
        found = self._entries.get(hash_token(secret))
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, secret: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[hash_token(secret)] = (principal, time.monotonic() + self._ttl_s)

    def forget(self, token_id: int) -> None:
        with self._lock:
            stale = [k for k, (p, _) in self._entries.items() if p.token_id == token_id]
            for key in stale:
                del self._entries[key]
