"""Running a host agent inside this process over the job queue, exports done up front.

Converting models is the slow part of profiling on a host (about half a second per layer,
seconds per network); the measuring itself is milliseconds. Exporting every queued model in
parallel first lets both cores convert, and keeps the two costs apart in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from device_agents.host import HostBackend
from device_agents.quality import DEFAULT_GATE, Gate
from device_agents.runners import Timing
from device_agents.worker import WorkerStats, run_worker
from latency_api import HwlatClient, JobFailed
from latency_api.schemas.jobs import ProfileLayers
from models import parse
from models.export import ExportSpec, export_specs


@dataclass
class Timings:
    export_s: float = 0.0
    measure_s: float = 0.0
    jobs: list[WorkerStats] = field(default_factory=list)


def queued_specs(client: HwlatClient, device_id: int, backend: HostBackend) -> list[ExportSpec]:
    """Every model file the device's queued jobs will need (all pages of the queue)."""
    specs: list[ExportSpec] = []
    fmt = backend.export_format
    for job in client.iter_jobs(status="queued", device_id=device_id):
        payload = job.payload
        if isinstance(payload, ProfileLayers):
            specs += [
                ExportSpec.layer(parse(k), fmt, backend.precision) for k in payload.layer_keys
            ]
        else:
            space = client.space(payload.space)  # a registered space is fetched once
            specs += [
                ExportSpec.network(space.network(a), fmt, backend.precision)
                for a in payload.architectures
            ]
    return specs


def host_agent_runner(
    client: HwlatClient,
    device_id: int,
    backend: HostBackend | None = None,
    defaults: Timing | None = None,
    timings: Timings | None = None,
    workers: int = 2,
    gate: Gate | None = DEFAULT_GATE,
) -> Callable[[], None]:
    """A function that exports what the queue needs, then works the queue until it is empty.

    Gated by default, as every agent is; ``gate=None`` measures without the quality gate.
    """
    agent = backend or HostBackend()
    agent_defaults = defaults or Timing()
    spent = timings if timings is not None else Timings()

    def run() -> None:
        started = time.monotonic()
        export_specs(queued_specs(client, device_id, agent), workers=workers, progress=True)
        spent.export_s += time.monotonic() - started
        started = time.monotonic()
        stats = run_worker(
            client,
            agent,
            device_id,
            f"host:{agent.name}",
            agent_defaults,
            gate=gate,
            stop_when_idle=True,
            show_progress=True,
        )
        spent.measure_s += time.monotonic() - started
        spent.jobs.append(stats)
        if stats.failed:
            raise JobFailed(f"{len(stats.failed)} profiling job(s) failed: {stats.failed}")

    return run
