"""Which database errors mean "the database is not answering", and how that is said.

Shared by the command line (``migrate.database_errors``) and the HTTP handlers, so a lost
connection reads the same everywhere and never leaks a statement's parameters.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from latency_service.errors import DatabaseUnavailable, InvalidInput


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
    return DatabaseUnavailable(
        f"cannot reach the database at {where}: {_first_line(error)}; the request can be "
        "repeated once it is back (check that it runs and that HWLAT_DATABASE_URL is right)"
    )


def is_bad_data(error: BaseException) -> bool:
    """A value the database refuses to store (a NUL character in text, a number out of its
    column's range): the request's fault, not the service's."""
    return isinstance(error, DataError)


def bad_data(error: BaseException) -> InvalidInput:
    return InvalidInput(
        f"a value in this request cannot be stored: {_first_line(error)}; remove NUL "
        "characters from text and keep numbers within the documented ranges"
    )


def _first_line(error: BaseException) -> str:
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
