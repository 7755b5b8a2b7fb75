"""Throwaway PostgreSQL for the tests and the benchmarks: databases on a server, and whole
clusters of this process's own.

The server is ``HWLAT_TEST_POSTGRES_URL`` (default: the local one, trust auth). The tests start a
:class:`PrivatePostgres` on that address when nothing answers there (tests/fixtures/postgres.py);
the fault scenarios start one to stop and restart it, which the machine's shared server never is.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from hwlat.service_process import free_port

POSTGRES_URL_ENV = "HWLAT_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def postgres_url() -> str:
    """The server throwaway databases are made on."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def unreachable(url: str, timeout_s: int = 3) -> str | None:
    """Why ``url`` cannot be connected to, or None when it answers."""
    engine = create_engine(url, connect_args={"connect_timeout": timeout_s})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as error:
        return str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    finally:
        engine.dispose()
    return None


def create_postgres_database(server_url: str | None = None) -> str:
    """A fresh, empty database on the server; its URL."""
    server = server_url or postgres_url()
    name = f"hwlat_test_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    server = make_url(url).set(database=make_url(postgres_url()).database)
    _admin(
        server.render_as_string(hide_password=False),
        f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)',
    )


def _admin(server_url: str, statement: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


class PrivatePostgres:
    """A PostgreSQL cluster of this process's own, in a temporary directory: initdb'd here,
    started and stopped at will, removed with its files.

    It listens on 127.0.0.1 at ``port`` (a free one by default), with trust authentication for
    ``user``. As root, the cluster belongs to the ``postgres`` system user, since initdb and the
    server refuse to run as root.
    """

    def __init__(self, port: int | None = None, user: str = "postgres") -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError(
                "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; install them "
                "with scripts/ensure_test_tools.sh (or: apt-get install postgresql)"
            )
        self.bin = Path(found[-1]).parent
        self.port = port or free_port()
        self.user = user
        self.root = Path(tempfile.mkdtemp(prefix="hwlat-pg-"))
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self._run("initdb", "-D", str(self.data), "-U", user, "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        # fsync off: a throwaway cluster has nothing to keep after a crash of the machine.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # not running: nothing to stop
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "server.log").read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"

    def _run(self, tool: str, *args: str) -> None:
        try:
            subprocess.run(
                [*self._as, str(self.bin / tool), *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=self.root,
            )
        except subprocess.CalledProcessError as error:
            raise RuntimeError(
                f"{tool} failed ({error.returncode}): {error.stderr.strip()[-1000:]}\n"
                f"{self.log_tail()}"
            ) from error
