"""The claim loop: lease a job, profile what it asks for, upload under the lease, complete."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device_agents.client import JobLease, ServiceClient, ServiceError
from device_agents.errors import DeviceLost, MeasurementError
from device_agents.profiling import Backend, profile
from device_agents.runners import RunSettings
from models import get_space, parse

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    stored: int = 0


class Heartbeat:
    """Extends a job's lease from a background thread while the job runs."""

    def __init__(self, client: ServiceClient, lease: JobLease, lease_s: float) -> None:
        self._client, self._lease, self._lease_s = client, lease, lease_s
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{lease.id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                self._client.heartbeat(self._lease, self._lease_s)
            except ServiceError as error:
                if error.code == "lease_lost":
                    self.lost = True
                    return
                log.warning("heartbeat for job %s failed: %s", self._lease.id, error)


def run_job(
    client: ServiceClient,
    backend: Backend,
    device_id: int,
    job: dict[str, Any],
    base: RunSettings,
    *,
    show_progress: bool = False,
) -> int:
    """Profile one claimed job and upload its results under the lease; stored count."""
    lease = JobLease(int(job["id"]), str(job["lease_token"]))
    knobs = dict(job.get("settings") or {})
    settings = RunSettings(
        num_threads=base.num_threads,
        use_xnnpack=base.use_xnnpack,
        cpu_affinity=base.cpu_affinity,
        warmup_runs=int(knobs.get("warmup_runs", base.warmup_runs)),
        num_runs=int(knobs.get("num_runs", base.num_runs)),
        min_secs=float(knobs.get("min_secs", base.min_secs)),
        max_secs=base.max_secs,
        seed=base.seed,
    )
    payload = job["payload"]
    common: dict[str, Any] = {
        "settings": settings,
        "repeats": int(knobs.get("repeats", 1)),
        "cooldown_s": float(knobs.get("cooldown_secs", 0.0)),
        "show_progress": show_progress,
    }
    if job["kind"] == "profile_layers":
        results = profile(backend, layers=[parse(k) for k in payload["layer_keys"]], **common)
        kind = "layers"
    else:
        space = get_space(payload["space"])
        results = profile(backend, space=space, architectures=payload["architectures"], **common)
        kind = "networks"
    ids = client.upload(kind, device_id, [r.as_upload() for r in results], job=lease)
    client.complete(lease, {"stored": len(ids), "kind": kind, "ids": ids})
    return len(ids)


def run_worker(
    client: ServiceClient,
    backend: Backend,
    device_id: int,
    agent: str,
    base: RunSettings,
    *,
    lease_s: float = 300.0,
    poll_s: float = 5.0,
    stop_when_idle: bool = False,
    max_jobs: int | None = None,
    show_progress: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkerStats:
    """Claim and run jobs until idle (if asked), ``max_jobs`` ran, or the device is lost."""
    stats = WorkerStats()
    while max_jobs is None or len(stats.done) + len(stats.failed) + len(stats.lost) < max_jobs:
        job = client.claim(device_id, agent, lease_s)
        if job is None:
            if stop_when_idle:
                break
            sleep(poll_s)
            continue
        lease = JobLease(int(job["id"]), str(job["lease_token"]))
        log.info("job %s claimed (%s)", lease.id, job["kind"])
        try:
            with Heartbeat(client, lease, lease_s):
                stats.stored += run_job(
                    client, backend, device_id, job, base, show_progress=show_progress
                )
            stats.done.append(lease.id)
        except DeviceLost as error:
            _give_back(client, lease, f"device lost: {error}")
            stats.failed.append(lease.id)
            raise
        except MeasurementError as error:
            _give_back(client, lease, f"measurement failed: {error}")
            stats.failed.append(lease.id)
        except ServiceError as error:
            if error.code != "lease_lost":
                raise
            log.warning("job %s: lease lost; its work is dropped", lease.id)
            stats.lost.append(lease.id)
    return stats


def _give_back(client: ServiceClient, lease: JobLease, reason: str) -> None:
    """Return the job for a retry; if the lease is already gone there is nothing to return."""
    try:
        client.fail(lease, reason, retry=True)
    except ServiceError as error:
        if error.code != "lease_lost":
            raise
