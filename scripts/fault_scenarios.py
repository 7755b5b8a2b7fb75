"""Fault injection against real processes: the service SIGKILLed mid-ingest, an agent SIGKILLed
mid-job, PostgreSQL's connections killed, PostgreSQL restarted.

Each scenario runs real ``hwlat serve`` (and ``hwlat agent``) processes on this machine, injects
its fault, and returns what it observed as plain figures: what was sent, what was stored, how
often each status came back. ``tests/test_faults.py`` asserts on them;
``scripts/bench_faults.py`` writes them to ``docs/bench/faults.json`` for docs/reliability.md.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from hwlat.service_process import (
    HWLAT,
    ServiceProcess,
    bearer,
    create_token,
    hwlat_env,
)
from latency_api import HwlatClient
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.jobs import DeviceSelector, JobIn, JobTiming, ProfileLayers
from latency_api.schemas.measurements import LayerMeasurementIn
from latency_service.measurements.tables import LayerMeasurement
from models import get_space
from scripts.postgres import PrivatePostgres, create_postgres_database, drop_postgres_database

LAYER_KEYS = (
    "mbconv_hw112_i16_o24_k3_e3_s2",
    "mbconv_hw56_i24_o24_k5_e6_s1",
    "mbconv_hw56_i24_o40_k5_e6_s2",
)
DEVICE = DeviceIn.model_validate(
    {
        "name": "fault-host",
        "kind": "host",
        "runtime": "litert",
        "runtime_version": "faults",
        "delegate": "xnnpack",
        "threads": 1,
    }
)


class Observed(httpx.HTTPTransport):
    """A real transport that counts what came back: statuses, and transport errors by type
    (``ReadError`` and the like: the request was sent and its answer lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.TransportError as error:
            self._count(type(error).__name__)
            raise
        self._count(str(response.status_code))
        return response

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1


def measurement(tag: str, index: int) -> LayerMeasurementIn:
    """A measurement traceable to the upload that sent it: its tag rides in agent_version."""
    median = 1.0 + index * 1e-4
    return LayerMeasurementIn(
        layer_key=LAYER_KEYS[index % len(LAYER_KEYS)],
        count=30,
        median_ms=median,
        mean_ms=median,
        std_ms=0.01,
        min_ms=median * 0.9,
        max_ms=median * 1.2,
        agent_version=tag,
    )


def stored_rows(database_url: str, device_id: int) -> list[tuple[str, str, float]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    LayerMeasurement.agent_version,
                    LayerMeasurement.layer_key,
                    LayerMeasurement.median_ms,
                ).where(LayerMeasurement.device_id == device_id)
            ).all()
    finally:
        engine.dispose()
    return [(str(a), str(k), float(m)) for a, k, m in rows]


def count_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(LayerMeasurement)) or 0)
    finally:
        engine.dispose()


def compare(
    sent: list[tuple[str, str, float]], stored: list[tuple[str, str, float]]
) -> dict[str, int]:
    """Exactly-once in figures: rows missing, rows stored more than once, rows never sent."""
    want, have = Counter(sent), Counter(stored)
    return {
        "sent": len(sent),
        "stored": len(stored),
        "missing": sum((want - have).values()),
        "duplicated": sum(n - 1 for n in have.values() if n > 1),
        "unexpected": sum((have - want).values()),
    }


@contextmanager
def postgres_database() -> Iterator[str]:
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


# -- the service SIGKILLed in the middle of ingest ----------------------------------------------


def kill_service_mid_ingest(
    workdir: Path,
    *,
    agents: int = 4,
    batches: int = 30,
    batch_size: int = 50,
    kills: int = 2,
    workers: int = 2,
) -> dict[str, Any]:
    """``agents`` threads upload through HwlatClient (default retries, one Idempotency-Key per
    batch) while the service is SIGKILLed ``kills`` times and restarted on the same port."""
    with postgres_database() as url:
        env = hwlat_env(workdir, url)
        token = create_token(env, "ingest", name="agents")
        server = ServiceProcess(env, workdir / "serve.log", workers=workers, log_level="warning")
        server.start()
        try:
            with HwlatClient(server.url, token) as api:
                device_id = api.register_device(DEVICE).id
            total = agents * batches * batch_size
            sent: list[tuple[str, str, float]] = []
            transports = [Observed() for _ in range(agents)]
            failures: list[str] = []

            def agent(number: int) -> None:
                with HwlatClient(server.url, token, transport=transports[number]) as client:
                    for batch in range(batches):
                        items = [
                            measurement(f"a{number}-b{batch}-i{i}", i) for i in range(batch_size)
                        ]
                        try:
                            client.upload_layers(device_id, items)
                        except Exception as error:  # noqa: BLE001 - reported as a figure
                            failures.append(f"agent {number} batch {batch}: {error!r}")
                            return
                        sent.extend((m.agent_version, m.layer_key, m.median_ms) for m in items)

            threads = [threading.Thread(target=agent, args=(n,)) for n in range(agents)]
            for thread in threads:
                thread.start()
            kill_log = []
            for k in range(kills):
                # Kill once a share of the uploads is in: the agents are mid-stream.
                threshold = total * (k + 1) // (kills + 2)
                while count_rows(url) < threshold and any(t.is_alive() for t in threads):
                    time.sleep(0.02)
                stored_at_kill = count_rows(url)
                server.kill()
                down_at = time.monotonic()
                time.sleep(0.5)
                server.start()
                kill_log.append(
                    {
                        "stored_at_kill": stored_at_kill,
                        "down_s": round(time.monotonic() - down_at, 2),
                    }
                )
            for thread in threads:
                thread.join(timeout=300)
            outcomes: Counter[str] = sum((t.outcomes for t in transports), Counter())
        finally:
            server.close()
        stored = stored_rows(url, device_id)
    return {
        "agents": agents,
        "batch_size": batch_size,
        "batches_per_agent": batches,
        "service_workers": workers,
        "kills": kill_log,
        "client_outcomes": dict(outcomes),
        "agent_failures": failures,
        **compare(sent, stored),
    }


# -- an agent SIGKILLed in the middle of a job ---------------------------------------------------


def kill_agent_mid_job(
    workdir: Path, *, lease_s: float = 3.0, n_layers: int | None = None
) -> dict[str, Any]:
    """A real ``hwlat agent host`` on tiny-64 (its first ``n_layers`` variants, all by default)
    is SIGKILLed while it works on a job; once the lease runs out a second agent process takes
    the job over and finishes it."""
    env = hwlat_env(workdir)
    admin = create_token(env, "admin", name="admin")
    keys = [str(k) for k in get_space("tiny-64").variants()][:n_layers]
    with ServiceProcess(env, workdir / "serve.log") as server:
        agent_env = {**env, "HWLAT_SERVICE_URL": server.url, "HWLAT_TOKEN": admin}
        args = [
            str(HWLAT),
            "agent",
            "host",
            "--name",
            "fault-agent",
            "--lease",
            str(lease_s),
            "--max-busy-pct",
            "100",
            "--until-idle",
            # Exactly one measurement per layer: this is about the lease, not the quality gate
            # (whose re-measurements are rows of their own).
            "--no-gate",
        ]
        with HwlatClient(server.url, admin) as api:
            job = api.create_job(
                JobIn(
                    selector=DeviceSelector(name="fault-agent"),
                    payload=ProfileLayers(layer_keys=keys),
                    # At least 0.25 s of measuring per layer (5 s for all 21): the kill, half a
                    # lease after the claim, lands mid-job however fast the machine and however
                    # warm the export cache.
                    timing=JobTiming(warmup_runs=1, num_runs=5, min_secs=0.25),
                )
            )
            first_log = (workdir / "agent-1.log").open("wb")
            first = subprocess.Popen(
                args, env=agent_env, stdout=first_log, stderr=subprocess.STDOUT
            )
            try:
                leased = _wait_for(lambda: api.get_job(job.id).status == "leased", 120)
                # Mid-job: it holds the lease and is exporting or measuring.
                time.sleep(lease_s / 2)
                state_at_kill = api.get_job(job.id)
                first.send_signal(signal.SIGKILL)
                first.wait(10)
            finally:
                first_log.close()
                if first.poll() is None:
                    first.kill()

            # The second agent starts once the lease (extended by the last heartbeat) ran out;
            # started earlier, it would find nothing to claim and stop as idle.
            def lease_ran_out() -> bool:
                current = api.get_job(job.id)
                expires = current.lease_expires_at
                return current.status != "leased" or (
                    expires is not None and expires.timestamp() < time.time()
                )

            _wait_for(lease_ran_out, 10 * lease_s)
            second = subprocess.run(
                args, env=agent_env, capture_output=True, text=True, timeout=600, check=False
            )
            final = api.get_job(job.id)
            device_id = final.claimed_device_id
            # The job's layers, not the drift reference timed around it.
            rows = (
                list(api.iter_layer_measurements(device_id=device_id, role="layer"))
                if device_id
                else []
            )
    counts = Counter(r.layer_key for r in rows)
    return {
        "lease_s": lease_s,
        "layers_in_job": len(keys),
        "leased_before_kill": leased,
        "status_at_kill": state_at_kill.status,
        "second_agent_exit": second.returncode,
        "second_agent_output": second.stdout.strip().splitlines()[-1:] if second.stdout else [],
        "final_status": final.status,
        "attempts": final.attempts,
        "result_stored": final.result.stored if final.result else None,
        "rows": len(rows),
        "distinct_layers": len(counts),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "missing": len(set(keys) - set(counts)),
    }


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


# -- PostgreSQL: connections killed, server restarted --------------------------------------------


@dataclass
class Traffic:
    """Request loops in threads against a running service; what each answer was."""

    url: str
    token: str
    device_id: int
    outcomes: Counter[str] = field(default_factory=Counter)
    bad_shapes: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, loops: int = 3) -> None:
        for n in range(loops):
            thread = threading.Thread(target=self._loop, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self, number: int) -> None:
        n = 0
        with httpx.Client(base_url=self.url, headers=bearer(self.token), timeout=30) as http:
            while not self._stop.is_set():
                n += 1
                kind = ("read", "write", "health")[(number + n) % 3]
                try:
                    if kind == "read":
                        response = http.get("/v1/devices")
                    elif kind == "write":
                        response = http.post(
                            "/v1/measurements/layers",
                            json={
                                "device_id": self.device_id,
                                "measurements": [
                                    measurement(f"t{number}-{n}", n).model_dump(mode="json")
                                ],
                            },
                        )
                    else:
                        response = http.get("/healthz")
                except httpx.TransportError as error:
                    self._record(f"{kind} {type(error).__name__}")
                    continue
                self._record(f"{kind} {response.status_code}")
                if response.status_code >= 400:
                    body = response.json()
                    if set(body) != {"error", "detail"} or (
                        response.status_code == 503 and body["error"] != "database_unavailable"
                    ):
                        with self._lock:
                            self.bad_shapes.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.005)

    def _record(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            self.timeline.append((time.monotonic(), outcome))

    def since(self, moment: float) -> Counter[str]:
        with self._lock:
            return Counter(o for t, o in self.timeline if t >= moment)


def _errors_5xx(outcomes: Counter[str]) -> dict[str, int]:
    return {o: n for o, n in outcomes.items() if o.split()[-1].startswith("5")}


def _service_on(workdir: Path, url: str, workers: int) -> tuple[ServiceProcess, str, int]:
    env = hwlat_env(workdir, url)
    token = create_token(env, "admin", name="traffic")
    server = ServiceProcess(env, workdir / "serve.log", workers=workers, log_level="warning")
    server.start()
    with HwlatClient(server.url, token) as api:
        device_id = api.register_device(DEVICE).id
    return server, token, device_id


def postgres_connections_killed(
    workdir: Path, *, seconds: float = 6.0, every_s: float = 0.25, workers: int = 2
) -> dict[str, Any]:
    """Every backend of the service's own database is terminated every ``every_s`` while
    reads, writes and health checks run; then the kills stop."""
    with postgres_database() as url:
        server, token, device_id = _service_on(workdir, url, workers)
        try:
            pid = server.pid
            traffic = Traffic(server.url, token, device_id)
            traffic.start()
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            name = make_url(url).database
            terminated = 0
            try:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    with admin.connect() as conn:
                        # Only this test's database, never another engineer's connections.
                        terminated += len(
                            conn.execute(
                                text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                                ),
                                {"name": name},
                            ).all()
                        )
                    time.sleep(every_s)
            finally:
                admin.dispose()
            stopped = time.monotonic()
            time.sleep(2.0)
            after = traffic.since(stopped + 1.0)
            traffic.stop()
            unchanged = server.pid == pid
        finally:
            server.close()
    return {
        "seconds": seconds,
        "backends_terminated": terminated,
        "outcomes": dict(traffic.outcomes),
        "answers_5xx": _errors_5xx(traffic.outcomes),
        "bad_error_shapes": traffic.bad_shapes[:5],
        "after_kills_stopped": dict(after),
        "service_pid_unchanged": unchanged,
    }


def postgres_restarted(workdir: Path, *, outage_s: float = 3.0, workers: int = 2) -> dict[str, Any]:
    """A private PostgreSQL is stopped for ``outage_s`` and started again while reads, writes
    and health checks run against the service; the service is not restarted."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        server, token, device_id = _service_on(workdir, cluster.url, workers)
        try:
            pid = server.pid
            traffic = Traffic(server.url, token, device_id)
            traffic.start()
            time.sleep(1.0)
            down = time.monotonic()
            cluster.stop("fast")
            time.sleep(outage_s)
            during = traffic.since(down + 0.5)
            cluster.start()
            up = time.monotonic()
            recovered_s = None
            while time.monotonic() - up < 30:
                recent = [o for t, o in list(traffic.timeline) if t >= time.monotonic() - 0.3]
                if recent and all(o.endswith(("200", "201")) for o in recent):
                    recovered_s = round(time.monotonic() - up - 0.3, 2)
                    break
                time.sleep(0.1)
            time.sleep(1.0)
            after = traffic.since(up + (recovered_s or 0) + 0.5)
            traffic.stop()
            unchanged = server.pid == pid
        finally:
            server.close()
    finally:
        cluster.remove()
    return {
        "outage_s": outage_s,
        "during_outage": dict(during),
        "after_restart": dict(after),
        "recovered_within_s": recovered_s,
        "answers_5xx": _errors_5xx(traffic.outcomes),
        "bad_error_shapes": traffic.bad_shapes[:5],
        "service_pid_unchanged": unchanged,
    }
