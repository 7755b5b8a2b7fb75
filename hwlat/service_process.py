"""``hwlat serve`` as a real process: a free port, a wait for /healthz, a clean stop.

Shared by ``hwlat demo``, the benchmarks and the tests, so that all of them start, probe and
stop the service the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from models.export.cache import CACHE_ENV

# The console script installed next to the interpreter, so the entry point itself is exercised.
HWLAT = Path(sys.executable).with_name("hwlat")
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 60.0
# uvicorn re-raises the SIGTERM it handled once shutdown is complete, so a graceful stop ends
# with -SIGTERM; 0 is accepted too since older versions exit normally.
GRACEFUL_EXIT_CODES = (0, -signal.SIGTERM)


class ServerFailed(RuntimeError):
    """The service did not come up or did not stop; the message ends with its log."""


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago: the kernel picks it when binding port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def hwlat_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """This environment without any ``HWLAT_*`` setting of the caller, plus the given store.

    The export cache (``HWLAT_CACHE_DIR``) is the one exception: it is no setting of the
    service, and a child that exports should find what this process already exported.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWLAT_")}
    if os.environ.get(CACHE_ENV):
        env[CACHE_ENV] = os.environ[CACHE_ENV]
    env["HWLAT_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["HWLAT_DATABASE_URL"] = database_url
    return env


def run_hwlat(
    args: Sequence[str], env: dict[str, str], timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``hwlat <args>`` to completion; the caller checks the exit code."""
    return subprocess.run(
        [str(HWLAT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def create_token(env: dict[str, str], scope: str, name: str) -> str:
    """A new token's secret in the store ``env`` names, as ``hwlat token create`` makes it, but
    in this process: the store is migrated first, so this works before any service ran."""
    from latency_service.admin import create_token as create
    from latency_service.settings import Settings

    settings = Settings(
        data_dir=Path(env["HWLAT_DATA_DIR"]), database_url=env.get("HWLAT_DATABASE_URL", "")
    )
    return create(name, scope, settings.resolved_database_url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ServiceProcess:
    """One ``hwlat serve`` process at a time; ``start`` again after ``stop`` to restart it."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        workers: int = 1,
        no_auth: bool = False,
        log_level: str = "info",
        port: int | None = None,
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.workers = workers
        self.no_auth = no_auth
        self.log_level = log_level
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = bearer(token) if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        if self.process is not None:
            raise ServerFailed("already running; stop() it first")
        # Another process may take the probed port before the service binds it; try again with
        # a fresh one rather than fail on that race.
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_healthy(timeout)
                return self
            except ServerFailed:
                lost_port = "address already in use" in self.log_tail().lower()
                self._terminate()
                if not lost_port or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; the exit code. Raises if it had to be killed."""
        if self.process is None:
            raise ServerFailed("not running")
        returncode, killed = self._terminate(timeout)
        if killed:
            raise ServerFailed(f"no exit within {timeout}s of SIGTERM; killed\n{self.log_tail()}")
        return returncode

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, as a crash or an OOM kill would: no
        shutdown, no finished requests, no closed connections."""
        process, self.process = self.process, None
        if process is None:
            raise ServerFailed("not running")
        _kill_group(process.pid)
        process.wait(STOP_TIMEOUT_S)
        # The workers die asynchronously; until the last one is gone it may hold the port.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not _port_free(self.port):
            if time.monotonic() > deadline:
                raise ServerFailed(f"port {self.port} still taken {STOP_TIMEOUT_S}s after SIGKILL")
            time.sleep(0.02)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def close(self) -> None:
        """Stop if running, never raising: for finalisers."""
        if self.process is not None:
            self._terminate()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _spawn(self) -> None:
        args = [
            str(HWLAT),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            self.log_level,
        ]
        if self.no_auth:
            args.append("--no-auth")
        # A file, not a pipe: nobody drains a pipe while the server runs, and a full pipe
        # would block its logging. Appending keeps the log of every start of this server.
        with self.log_path.open("ab") as log:
            log.write(f"\n$ {' '.join(args)}\n".encode())
            log.flush()
            # Its own session, so that a server that ignores SIGTERM can be killed together
            # with its worker processes.
            self.process = subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_healthy(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(base_url=self.url, timeout=2.0) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerFailed(
                        f"hwlat serve exited with {self.process.returncode} before it was "
                        f"healthy\n{self.log_tail()}"
                    )
                try:
                    response = probe.get("/healthz")
                except httpx.TransportError as error:
                    last = repr(error)
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                time.sleep(0.05)
        raise ServerFailed(f"not healthy within {timeout}s ({last})\n{self.log_tail()}")

    def _terminate(self, timeout: float = STOP_TIMEOUT_S) -> tuple[int, bool]:
        process, self.process = self.process, None
        if process is None:
            return 0, False
        if process.poll() is not None:
            return process.returncode, False
        process.send_signal(signal.SIGTERM)
        try:
            returncode, killed = process.wait(timeout), False
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            returncode, killed = process.wait(timeout), True
        # A worker that outlived its supervisor would keep the port and the database open.
        _kill_group(process.pid)
        return returncode, killed


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: connections left in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
