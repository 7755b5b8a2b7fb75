"""Each request decodes registered spaces from this service's own database.

``models.spaces`` keeps the spaces a process has seen; a name it has not seen is looked up by
the resolver of the current context. This middleware sets one per request, bound to the app's
database, so validators, services and background work of that request all resolve alike, and
two apps in one process (tests) each read their own database.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from latency_service.spaces.service import find_spec
from models.space_spec import SpaceSpec
from models.spaces import resolving_spaces


class SpaceResolution:
    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session]) -> None:
        self.app = app
        self.sessions = sessions

    def _resolve(self, name: str) -> SpaceSpec | None:
        with self.sessions() as session:
            return find_spec(session, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with resolving_spaces(self._resolve):
            await self.app(scope, receive, send)
