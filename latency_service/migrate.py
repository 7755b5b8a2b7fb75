"""Running Alembic from code, for `hwlat db upgrade` and the tests; database errors said plainly."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from latency_service.db_errors import unavailable
from latency_service.errors import InvalidInput


def _script_location() -> Path:
    # Found, not imported: the migrations import the service's tables, not the other way round.
    spec = importlib.util.find_spec("migrations")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the migrations package is not installed beside latency_service")
    return Path(next(iter(spec.submodule_search_locations)))


SCRIPT_LOCATION = _script_location()


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser would treat % in a password as interpolation.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(
    url: str | None = None, connection: Connection | None = None, revision: str = "head"
) -> None:
    with database_errors(url):
        try:
            command.upgrade(alembic_config(url, connection), revision)
        except CommandError as error:
            raise InvalidInput(
                f"cannot upgrade to revision {revision!r}: {error}; use 'head' or a revision "
                "listed in migrations/versions"
            ) from None


def redact(url: str) -> str:
    """The URL with its password hidden; as given when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@contextmanager
def database_errors(url: str | None) -> Iterator[None]:
    """Database errors a user can fix, as domain errors that say how."""
    where = redact(url) if url else "the configured database"
    try:
        yield
    except (ArgumentError, NoSuchModuleError) as error:
        raise InvalidInput(
            f"HWLAT_DATABASE_URL {where!r} is not a usable database URL ({error}); expected "
            "e.g. postgresql+psycopg://user@host:5432/hwlat, or leave it empty for SQLite"
        ) from None
    except OperationalError as error:
        raise unavailable(error, where) from None
