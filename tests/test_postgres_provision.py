"""The suite brings its own PostgreSQL when none answers (tests/fixtures/session.py), and fails,
never skips, when none can be had. Each case runs a small pytest session of its own, as
`make test` would on a machine without a server at the test URL."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hwlat.service_process import free_port

pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1]
# A test that needs PostgreSQL: the migrations on a fresh database of the run's server.
NEEDS_POSTGRES = "tests/test_migrations.py::test_migrations_match_the_models[postgresql]"


def run_suite(postgres_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HWLAT_TEST_POSTGRES_URL": postgres_url}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider"),
            *("-q", "-rs", "--basetemp", str(tmp_path / "inner"), NEEDS_POSTGRES),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def clusters() -> set[str]:
    return set(glob.glob("/tmp/hwlat-pg-*"))


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_with_nothing_at_the_url_the_suite_starts_a_cluster_and_removes_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    before = clusters()
    done = run_suite(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    # Gone afterwards: nothing listens there any more, and its files are removed.
    assert not port_answers(port)
    # Nothing new is left behind. (Other tests running beside this one, the fault tests'
    # private clusters, may start or remove theirs meanwhile: only new ones count.)
    assert clusters() - before == set()


def test_without_any_postgresql_the_tests_that_need_it_fail(tmp_path: Path) -> None:
    # The port is taken by something that is not PostgreSQL: no server answers there, and no
    # cluster can be started there either.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        done = run_suite(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 error" in done.stdout or "1 failed" in done.stdout, done.stdout[-3000:]
    assert "PostgreSQL is needed and cannot be had" in done.stdout
    assert "skipped" not in done.stdout
