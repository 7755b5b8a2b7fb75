"""The claim loop: lease a job, profile what it asks for, upload under the lease, complete."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from device_agents.errors import DeviceLost, MeasurementError
from device_agents.profiling import Backend, Result, profile, remeasured
from device_agents.quality import Gate, Verdict
from device_agents.runners import Timing
from latency_api import HwlatClient, HwlatError, JobLease, LeaseLost
from latency_api.schemas.jobs import ClaimedJob, JobResult, ProfileLayers
from models import parse

# Timed before and after every job: a mid-sized MBConv, like the layers it watches over.
REFERENCE_KEY = parse("mbconv_hw28_i32_o32_k3_e6_s1")

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    stored: int = 0


class Heartbeat:
    """Extends a job's lease from a background thread while the job runs.

    A lost lease is not reported from here: the upload under the lease is refused by the
    service, and that refusal is what drops the work.
    """

    def __init__(self, client: HwlatClient, lease: JobLease, lease_s: float) -> None:
        self._client, self._lease, self._lease_s = client, lease, lease_s
        self._stop = threading.Event()
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
            except LeaseLost:
                log.warning("job %s: lease lost; the upload will be refused", self._lease.id)
                return
            except HwlatError as error:
                log.warning("heartbeat for job %s failed: %s", self._lease.id, error)


def run_job(
    client: HwlatClient,
    backend: Backend,
    device_id: int,
    job: ClaimedJob,
    defaults: Timing,
    *,
    gate: Gate | None = None,
    reference: bool = True,
    show_progress: bool = False,
) -> int:
    """Profile one claimed job and upload every attempt under the lease; the stored count.

    The job's timing wins over ``defaults`` (the agent's flags) wherever the job set it. With a
    ``gate``, disturbed measurements are stored as rejected and taken again. With
    ``reference``, a fixed drift-reference layer is timed before and after the job and stored
    apart (role "reference"), so that the service can see slow drift between jobs.
    """
    lease = JobLease.of(job)
    timing = defaults.under(job.timing)
    payload = job.payload
    references = [_reference(backend, timing, gate, 0)] if reference else []
    if isinstance(payload, ProfileLayers):
        keys = [parse(k) for k in payload.layer_keys]
        results = profile(
            backend,
            layers=keys,
            timing=timing,
            gate=gate,
            show_progress=show_progress,
            metrics=payload.metrics,
        )
        layers = [r.layer_measurement() for r in results]
        ids = client.upload_layers(device_id, layers, job=lease)
        kind: Literal["layers", "networks"] = "layers"
    else:
        space = client.space(payload.space)  # a registered space is fetched once
        results = profile(
            backend,
            space=space,
            architectures=payload.architectures,
            timing=timing,
            gate=gate,
            show_progress=show_progress,
            metrics=payload.metrics,
        )
        networks = [r.network_measurement() for r in results]
        ids = client.upload_networks(device_id, networks, job=lease)
        kind = "networks"
    if reference:
        references.append(_reference(backend, timing, gate, 1))
        client.upload_layers(
            device_id, [r.layer_measurement(role="reference") for r in references], job=lease
        )
    client.complete(
        lease, JobResult(kind=kind, stored=len(ids), ids=ids, remeasured=remeasured(results))
    )
    return len(ids)


def run_worker(
    client: HwlatClient,
    backend: Backend,
    device_id: int,
    agent: str,
    defaults: Timing,
    *,
    gate: Gate | None = None,
    reference: bool = True,
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
        lease = JobLease.of(job)
        log.info("job %s claimed (%s)", lease.id, job.kind)
        try:
            with Heartbeat(client, lease, lease_s):
                stats.stored += run_job(
                    client,
                    backend,
                    device_id,
                    job,
                    defaults,
                    gate=gate,
                    reference=reference,
                    show_progress=show_progress,
                )
            stats.done.append(lease.id)
        except DeviceLost as error:
            _give_back(client, lease, f"device lost: {error}")
            stats.failed.append(lease.id)
            raise
        except MeasurementError as error:
            _give_back(client, lease, f"measurement failed: {error}")
            stats.failed.append(lease.id)
        except LeaseLost:
            log.warning("job %s: lease lost; its work is dropped", lease.id)
            stats.lost.append(lease.id)
    return stats


def _reference(backend: Backend, timing: Timing, gate: Gate | None, position: int) -> Result:
    """One window of the drift reference (position 0: before the job, 1: after it)."""
    measured = backend.measure_layer(REFERENCE_KEY, timing)
    verdict = gate.judge(measured.evidence) if gate else Verdict.ok()
    return Result(REFERENCE_KEY, None, measured, backend.tool_version, verdict, pass_index=position)


def _give_back(client: HwlatClient, lease: JobLease, reason: str) -> None:
    """Return the job for a retry; if the lease is already gone there is nothing to return."""
    with contextlib.suppress(LeaseLost):
        client.fail(lease, reason, retry=True)
