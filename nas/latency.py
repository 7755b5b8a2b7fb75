"""Everything the search asks of the latency service, behind two small protocols.

The search needs three things from the service: a device's per-layer runtime table (what the
differentiable loss is built from), predicted latencies of many architectures at once, and, to
close the loop, end-to-end measurements taken by an agent. Only this module talks to the service,
through the typed client ``latency_api.HwlatClient``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Protocol

import httpx

from latency_api import HwlatClient, ServiceError, ServiceUnreachable
from latency_api.schemas.enums import JobStatus
from latency_api.schemas.jobs import JobIn, JobOut, JobTiming, ProfileNetworks
from latency_api.schemas.predictors import MAX_ARCHITECTURES
from models import SearchSpace


class LatencyServiceError(RuntimeError):
    """The service answered with an error; ``code`` and ``detail`` are the service's words."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status} {code})")
        self.status = status
        self.code = code
        self.detail = detail


class TableMismatch(ValueError):
    """A runtime table that does not describe the search space the client knows."""


class TargetOutOfRange(ValueError):
    """A latency target no architecture of the space can meet (or one every one beats)."""


@dataclass(frozen=True, slots=True)
class TableEntry:
    index: int
    candidate: str
    layer_key: str
    ms: float
    estimated: bool


@dataclass(frozen=True)
class RuntimeTable:
    """A device's per searchable layer x candidate latencies and its calibration.

    ``latency(arch) = a * (sum_l ms[l][arch_l] + fixed_ms) + b`` when ``fixed_in_sum``, else
    ``a * sum + b`` (then ``b`` already stands for the fixed parts).
    """

    space: str
    predictor_version: int
    layers: tuple[tuple[TableEntry, ...], ...]
    fixed_ms: float | None
    a: float
    b: float
    fixed_in_sum: bool

    @classmethod
    def from_json(cls, data: Any) -> RuntimeTable:
        """Parse the service's ``format=json`` answer; raise naming the bad field."""
        try:
            calibration = data["calibration"]
            layers = tuple(
                tuple(
                    TableEntry(
                        index=int(c["index"]),
                        candidate=str(c["candidate"]),
                        layer_key=str(c["layer_key"]),
                        ms=float(c["ms"]),
                        estimated=bool(c["estimated"]),
                    )
                    for c in layer["candidates"]
                )
                for layer in data["layers"]
            )
            fixed_in_sum = bool(calibration["fixed_in_sum"])
            fixed = data["fixed_ms"]
            table = cls(
                space=str(data["space"]),
                predictor_version=int(data["predictor_version"]),
                layers=layers,
                fixed_ms=None if fixed is None else float(fixed),
                a=float(calibration["a"]),
                b=float(calibration["b"]),
                fixed_in_sum=fixed_in_sum,
            )
        except (KeyError, TypeError) as error:
            raise TableMismatch(f"runtime table answer lacks or mistypes field {error}") from None
        table._check_values()
        return table

    def _check_values(self) -> None:
        for position, layer in enumerate(self.layers):
            for entry in layer:
                if not math.isfinite(entry.ms) or entry.ms < 0:
                    raise TableMismatch(
                        f"runtime table of {self.space}, layer {position}, {entry.candidate}: "
                        f"{entry.ms} is not a latency in ms; refit the device's predictor"
                    )
        if self.fixed_in_sum and self.fixed_ms is None:
            raise TableMismatch("runtime table puts the fixed parts in the sum but gives none")
        if not (math.isfinite(self.a) and self.a > 0 and math.isfinite(self.b)):
            raise TableMismatch(f"runtime table calibration a={self.a}, b={self.b} is unusable")

    def check_space(self, space: SearchSpace) -> None:
        """Raise unless the table has exactly the space's layers and candidates, in order."""
        if self.space != space.name or len(self.layers) != space.num_layers:
            raise TableMismatch(
                f"runtime table is for {self.space} with {len(self.layers)} layers, not "
                f"{space.name} with {space.num_layers}; ask for space={space.name}"
            )
        for position, (layer, slot) in enumerate(zip(self.layers, space.layers, strict=True)):
            got = [(e.index, e.candidate) for e in layer]
            want = [(i, c.label) for i, c in enumerate(slot.candidates)]
            if got != want:
                raise TableMismatch(
                    f"runtime table layer {position} lists {got}, the space {space.name} "
                    f"{want}: this client and the service disagree on the space definition"
                )

    @property
    def offset_ms(self) -> float:
        """What the calibration adds to ``a * sum``: ``a * fixed_ms + b`` or ``b``."""
        fixed = self.fixed_ms if self.fixed_in_sum and self.fixed_ms is not None else 0.0
        return self.a * fixed + self.b

    def ms(self, position: int, index: int) -> float:
        return self.layers[position][index].ms

    def latency_ms(self, architecture: Sequence[int]) -> float:
        total = sum(self.ms(p, i) for p, i in enumerate(architecture))
        return self.a * total + self.offset_ms

    def range_ms(self) -> tuple[float, float]:
        """The fastest and slowest predicted latency over the whole space (the sum is additive)."""
        low = sum(min(e.ms for e in layer) for layer in self.layers)
        high = sum(max(e.ms for e in layer) for layer in self.layers)
        return self.a * low + self.offset_ms, self.a * high + self.offset_ms

    def require_reachable(self, target_ms: float) -> tuple[float, float]:
        """Raise unless some architecture's predicted latency is ``target_ms``; the range."""
        low, high = self.range_ms()
        if not (math.isfinite(target_ms) and low <= target_ms <= high):
            raise TargetOutOfRange(
                f"target {target_ms:g} ms is outside what {self.space} can reach on this "
                f"device: {low:.3f} ms (every layer fastest) to {high:.3f} ms (every layer "
                "slowest); pick a --target-ms in that range"
            )
        return low, high

    def estimated_entries(self) -> list[str]:
        return sorted({e.layer_key for layer in self.layers for e in layer if e.estimated})


@dataclass(frozen=True)
class Prediction:
    latency_ms: tuple[float, ...]
    uncertainty_ms: tuple[float, ...]
    predictor_version: int
    estimated_layers: tuple[str, ...] = ()


def device_table(source: LatencySource, device_id: int, space: SearchSpace) -> RuntimeTable:
    """The device's runtime table for ``space``, checked against the client's definition."""
    table = source.runtime_table(device_id, space.name)
    table.check_space(space)
    return table


class LatencySource(Protocol):
    """Where the search gets latencies: a device's runtime table and batched predictions."""

    def runtime_table(self, device_id: int, space: str) -> RuntimeTable: ...

    def predict(
        self, device_id: int, space: str, architectures: Sequence[Sequence[int]]
    ) -> Prediction: ...


class NetworkMeasurer(Protocol):
    """Measures whole networks end to end on the device (through an agent) and waits."""

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
    predict: int = 0
    predicted_architectures: int = 0
    jobs: int = 0


@dataclass
class ServiceLatencySource:
    """The latency service through its typed client; implements both protocols.

    The client's errors become :class:`LatencyServiceError`, so the rest of ``nas`` and its CLI
    see one error type with the service's code and detail.
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
        with _service_errors():
            wire = self._client.runtime_table(device_id, space)
        return RuntimeTable.from_json(wire.model_dump(mode="json"))

    def predict(
        self, device_id: int, space: str, architectures: Sequence[Sequence[int]]
    ) -> Prediction:
        rows = [[int(i) for i in arch] for arch in architectures]
        if not rows:
            raise ValueError("nothing to predict: the batch of architectures is empty")
        # The client splits at the service's limit; count the requests it makes.
        self.calls.predict += math.ceil(len(rows) / MAX_ARCHITECTURES)
        self.calls.predicted_architectures += len(rows)
        with _service_errors():
            answer = self._client.predict(device_id, space, rows)
        return Prediction(
            tuple(answer.latency_ms),
            tuple(answer.uncertainty_ms),
            answer.predictor_version,
            tuple(sorted({e.layer_key for e in answer.estimated_layers})),
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
        rows = [[int(i) for i in arch] for arch in architectures]
        if not rows:
            raise ValueError("nothing to measure: the list of architectures is empty")
        spec = JobIn(
            device_id=device_id,
            payload=ProfileNetworks(space=space, architectures=rows),
            timing=JobTiming.model_validate(dict(settings or {})),
        )
        self.calls.jobs += 1
        with _service_errors():
            # The client does not repeat a job POST: a lost answer would queue it twice.
            job = self._client.create_job(spec)
            if run_agent is not None:
                run_agent()
            done = self._wait_for_job(job.id, timeout_s)
            ids = set(done.result.ids if done.result else [])
            grouped: dict[tuple[int, ...], list[float]] = defaultdict(list)
            for row in self._client.iter_network_measurements(
                device_id=device_id, space=space, accepted=True
            ):
                if row.id in ids:
                    grouped[tuple(row.architecture)].append(row.median_ms)
        missing = [arch for arch in rows if tuple(arch) not in grouped]
        if missing:
            raise LatencyServiceError(
                500,
                "measurement_missing",
                f"job {job.id} finished but stored no accepted measurement of {len(missing)} "
                f"architecture(s), e.g. {missing[0]}; check the agent's log",
            )
        return [median(grouped[tuple(arch)]) for arch in rows]

    def _wait_for_job(self, job_id: int, timeout_s: float) -> JobOut:
        (job,) = self._client.wait_for_jobs([job_id], timeout_s, self.poll_s)
        if job.status == JobStatus.failed:
            raise LatencyServiceError(
                500, "job_failed", f"measuring job {job_id} failed: {job.error}"
            )
        return job


@contextmanager
def _service_errors() -> Iterator[None]:
    """The typed client's errors in the one shape the search reports."""
    try:
        yield
    except ServiceUnreachable as error:
        raise LatencyServiceError(0, "unreachable", str(error)) from error
    except ServiceError as error:
        raise LatencyServiceError(error.status, error.code, error.detail) from error
