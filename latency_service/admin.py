"""Administering the store from the machine that holds it (``hwlat token ...``): the database
directly, migrated first, so the first admin token can be made before any service runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.orm import Session

from latency_service.auth import service as tokens
from latency_service.auth.tables import ApiToken
from latency_service.db import make_engine, session_factory
from latency_service.migrate import database_errors, upgrade
from latency_service.settings import get_settings


@contextmanager
def _session(database_url: str | None = None) -> Iterator[Session]:
    url = database_url or get_settings().resolved_database_url
    upgrade(url)
    with database_errors(url):
        engine = make_engine(url)
        try:
            with session_factory(engine)() as session:
                yield session
        finally:
            engine.dispose()


def create_token(name: str, scope: str, database_url: str | None = None) -> str:
    """A new token's secret (printed once; only its hash is stored), in the store of the
    settings unless ``database_url`` names another."""
    parsed = tokens.parse_scope(scope)
    with _session(database_url) as session:
        return tokens.create_token(session, name=name, scope=parsed)[1]


def list_tokens() -> Sequence[ApiToken]:
    with _session() as session:
        return tokens.list_tokens(session)


def revoke_token(token_id: int) -> ApiToken:
    with _session() as session:
        return tokens.revoke(session, token_id)
