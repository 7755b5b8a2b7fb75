"""A lock shared by every process of one Optuna study, wherever they run.

Optuna numbers trials atomically, but "are there fewer than N trials? then ask one" is two
steps; two processes can both see N - 1 and overshoot the budget. Counting and asking under
this lock makes the budget exact. PostgreSQL storages use a session advisory lock on the
study's name (processes on many machines); SQLite storages a file lock beside the database
(processes on one machine); an in-memory study has one process and needs none.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

from models.errors import UserInputError


class UnsupportedStorage(UserInputError):
    """A storage URL the shared budget cannot be enforced on."""


def lock_key(study_name: str) -> int:
    """A stable signed 64-bit key (PostgreSQL's advisory lock space) for a study name."""
    digest = hashlib.sha256(f"hwlat-study:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StudyLock:
    """``with lock.hold():`` holds the study's lock (not re-entrant)."""

    def __init__(self, storage_url: str | None, study_name: str) -> None:
        self._engine: sqlalchemy.Engine | None = None
        self._path: Path | None = None
        self._key = lock_key(study_name)
        if storage_url is None:
            return
        url = make_url(storage_url)
        if url.get_backend_name() == "postgresql":
            self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        elif url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                raise UnsupportedStorage(
                    "an in-memory SQLite storage cannot be shared; give a file "
                    "(sqlite:///study.db) or a PostgreSQL URL"
                )
            database = Path(url.database)
            # The key, not the name: a study name may hold characters a file name cannot.
            self._path = database.with_name(f"{database.name}.{self._key & (2**64 - 1):016x}.lock")
        else:
            raise UnsupportedStorage(
                f"--storage {url.render_as_string(hide_password=True)}: several processes "
                "can share a study on PostgreSQL (many machines) or SQLite (one machine)"
            )

    def hold(self) -> AbstractContextManager[None]:
        if self._engine is not None:
            return self._advisory()
        if self._path is not None:
            return self._file()
        return nullcontext()

    @contextmanager
    def _advisory(self) -> Iterator[None]:
        if self._engine is None:
            raise RuntimeError("no PostgreSQL engine")
        with self._engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
            try:
                yield
            finally:
                connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key}
                )
                connection.commit()

    @contextmanager
    def _file(self) -> Iterator[None]:
        if self._path is None:
            raise RuntimeError("no lock file")
        with self._path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
