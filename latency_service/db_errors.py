"""Which database errors mean "the database is not answering", and how that is said.

Shared by the command line (``migrate.database_errors``) and the HTTP handlers, so a lost
connection reads the same everywhere and never leaks a statement's parameters.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from latency_service.errors import DatabaseUnavailable


def is_unavailable(error: BaseException) -> bool:
    """A refused, dropped or killed connection, a server shutting down, or an exhausted pool:
    the same request can succeed once the database is back."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def unavailable(
    error: BaseException, where: str = "the configured database"
) -> DatabaseUnavailable:
    # Only the driver's first line: SQLAlchemy's own text appends the statement and its
    # parameters, which may hold a token's hash or measured data.
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(original).strip().splitlines()
    reason = lines[0] if lines else type(original).__name__
    return DatabaseUnavailable(
        f"cannot reach the database at {where}: {reason}; the request can be repeated once "
        "it is back (check that it runs and that HWLAT_DATABASE_URL is right)"
    )
