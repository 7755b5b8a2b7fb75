"""Everything the search asks of the latency service, behind two small protocols.

The search needs three things from the service: a device's per-layer runtime table (what the
differentiable loss is built from), predicted latencies of many architectures at once, and, to
close the loop, end-to-end measurements taken by an agent. Only this module talks to the service,
through the typed client ``latency_api.HwlatClient``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Protocol

import httpx

from latency_api import HwlatClient, JobFailed
from latency_api.schemas.enums import DeviceMetric, JobStatus
from latency_api.schemas.jobs import JobIn, JobOut, JobTiming, ProfileNetworks
from latency_api.schemas.predictors import MAX_ARCHITECTURES, RuntimeTable
from models import SearchSpace
from models.units import BYTES_PER_MB
from predictor.channel_cost import ChannelCost


@dataclass(frozen=True)
class Prediction:
    latency_ms: tuple[float, ...]
    uncertainty_ms: tuple[float, ...]
    predictor_version: int
    estimated_layers: tuple[str, ...] = ()
    # Only when asked for (``metrics``): the service predicts them from their own models.
    peak_memory_mb: tuple[float, ...] | None = None
    energy_mj: tuple[float, ...] | None = None


def device_table(source: LatencySource, device_id: int, space: SearchSpace) -> RuntimeTable:
    """The device's runtime table for ``space``, checked against the client's definition."""
    table = source.runtime_table(device_id, space.name)
    table.check_space(space)
    return table


class LatencySource(Protocol):
    """Where the search gets latencies: a device's runtime table and batched predictions."""

    def runtime_table(self, device_id: int, space: str) -> RuntimeTable: ...

    def predict(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        metrics: Sequence[DeviceMetric] = (),
    ) -> Prediction:
        """Latency of each architecture, and each of ``metrics`` (peak memory, energy)."""
        ...


class ChannelCostSource(LatencySource, Protocol):
    """A latency source that also serves a device's channel cost (FiGS)."""

    def channel_cost(self, device_id: int, space: str) -> ChannelCost: ...


@dataclass(frozen=True)
class NetworkMeasured:
    """One network as the device measured it: latency, and the metrics asked for beside it."""

    latency_ms: float
    peak_memory_mb: float | None = None
    energy_mj: float | None = None


class NetworkMeasurer(Protocol):
    """Measures whole networks end to end on the device (through an agent) and waits."""

    def measure_networks(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        timeout_s: float,
        settings: Mapping[str, Any] | None = None,
        run_agent: Callable[[], None] | None = None,
        metrics: Sequence[DeviceMetric] = (),
    ) -> list[NetworkMeasured]: ...

    def measure(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        timeout_s: float,
        settings: Mapping[str, Any] | None = None,
        run_agent: Callable[[], None] | None = None,
    ) -> list[float]: ...


@dataclass
class CallCounts:
    """Requests made, so a report can say how often the service was asked."""

    runtime_table: int = 0
    channel_cost: int = 0
    predict: int = 0
    predicted_architectures: int = 0
    jobs: int = 0


@dataclass
class ServiceLatencySource:
    """The latency service through its typed client; implements both protocols.

    The client's errors (``latency_api.HwlatError``) pass through unchanged: callers, and the
    command line's one error handler, catch those.
    """

    base_url: str
    token: str | None = None
    timeout_s: float = 60.0
    retries: int = 3
    poll_s: float = 1.0
    calls: CallCounts = field(default_factory=CallCounts)
    transport: httpx.BaseTransport | None = None
    _client: HwlatClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = HwlatClient(
            self.base_url,
            self.token,
            timeout_s=self.timeout_s,
            retries=self.retries,
            backoff_s=0.25,
            transport=self.transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ServiceLatencySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- LatencySource ----------------------------------------------------------------------

    def runtime_table(self, device_id: int, space: str) -> RuntimeTable:
        self.calls.runtime_table += 1
        return self._client.runtime_table(device_id, space)

    def channel_cost(self, device_id: int, space: str) -> ChannelCost:
        self.calls.channel_cost += 1
        return self._client.channel_cost(device_id, space)

    def predict(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        metrics: Sequence[DeviceMetric] = (),
    ) -> Prediction:
        rows = [[int(i) for i in arch] for arch in architectures]
        if not rows:
            raise ValueError("nothing to predict: the batch of architectures is empty")
        # The client splits at the service's limit; count the requests it makes.
        self.calls.predict += math.ceil(len(rows) / MAX_ARCHITECTURES)
        self.calls.predicted_architectures += len(rows)
        answer = self._client.predict(device_id, space, rows, metrics=metrics)
        return Prediction(
            tuple(answer.latency_ms),
            tuple(answer.uncertainty_ms),
            answer.predictor_version,
            tuple(sorted({e.layer_key for e in answer.estimated_layers})),
            None if answer.peak_memory_mb is None else tuple(answer.peak_memory_mb),
            None if answer.energy_mj is None else tuple(answer.energy_mj),
        )

    # -- NetworkMeasurer --------------------------------------------------------------------

    def measure(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        timeout_s: float,
        settings: Mapping[str, Any] | None = None,
        run_agent: Callable[[], None] | None = None,
    ) -> list[float]:
        """Queue one ``profile_networks`` job, wait for an agent, return medians per arch.

        Repeats of an architecture (within the job) count once, as the median of the accepted
        ones; ``settings`` is the job's timing (e.g. ``{"repeats": 3}``).
        """
        measured = self.measure_networks(
            device_id,
            space,
            architectures,
            timeout_s=timeout_s,
            settings=settings,
            run_agent=run_agent,
        )
        return [m.latency_ms for m in measured]

    def measure_networks(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        timeout_s: float,
        settings: Mapping[str, Any] | None = None,
        run_agent: Callable[[], None] | None = None,
        metrics: Sequence[DeviceMetric] = (),
    ) -> list[NetworkMeasured]:
        """As :meth:`measure`, with ``metrics`` (memory, energy) measured in the same job."""
        rows = [[int(i) for i in arch] for arch in architectures]
        if not rows:
            raise ValueError("nothing to measure: the list of architectures is empty")
        spec = JobIn(
            device_id=device_id,
            payload=ProfileNetworks(space=space, architectures=rows, metrics=list(metrics)),
            timing=JobTiming.model_validate(dict(settings or {})),
        )
        self.calls.jobs += 1
        # The client does not repeat a job POST: a lost answer would queue it twice.
        job = self._client.create_job(spec)
        if run_agent is not None:
            run_agent()
        done = self._wait_for_job(job.id, timeout_s)
        ids = set(done.result.ids if done.result else [])
        grouped: dict[tuple[int, ...], list[float]] = defaultdict(list)
        memory_mb: dict[tuple[int, ...], float] = {}
        energy_mj: dict[tuple[int, ...], float] = {}
        for row in self._client.iter_network_measurements(
            device_id=device_id, space=space, accepted=True
        ):
            if row.id in ids:
                arch = tuple(row.architecture)
                grouped[arch].append(row.median_ms)
                # One row per network carries its metrics (the agent's metric pass).
                if row.peak_memory_bytes is not None:
                    memory_mb[arch] = row.peak_memory_bytes / BYTES_PER_MB
                if row.energy_mj is not None:
                    energy_mj[arch] = row.energy_mj
        missing = [arch for arch in rows if tuple(arch) not in grouped]
        if missing:
            raise JobFailed(
                f"job {job.id} finished but stored no accepted measurement of {len(missing)} "
                f"architecture(s), e.g. {missing[0]}; check the agent's log",
            )
        return [
            NetworkMeasured(
                median(grouped[tuple(arch)]), memory_mb.get(tuple(arch)), energy_mj.get(tuple(arch))
            )
            for arch in rows
        ]

    def _wait_for_job(self, job_id: int, timeout_s: float) -> JobOut:
        (job,) = self._client.wait_for_jobs([job_id], timeout_s, self.poll_s)
        if job.status == JobStatus.failed:
            raise JobFailed(f"measuring job {job_id} failed: {job.error}")
        return job
