"""Everything the search asks of the latency service, behind two small protocols.

The search needs three things from the service: a device's per-layer runtime table (what the
differentiable loss is built from), predicted latencies of many architectures at once, and, to
close the loop, end-to-end measurements taken by an agent. Only this module speaks HTTP, so
swapping the transport (for the typed ``latency_api`` client) changes nothing else in ``nas``.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Protocol

import httpx

from models import SearchSpace

# The service refuses larger predict batches; bigger requests are split, never truncated.
MAX_PREDICT_BATCH = 100_000
RETRY_STATUS = frozenset({502, 503, 504})


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
    """The latency service over plain HTTP (bearer token); implements both protocols."""

    base_url: str
    token: str | None = None
    timeout_s: float = 60.0
    retries: int = 3
    poll_s: float = 1.0
    calls: CallCounts = field(default_factory=CallCounts)
    transport: httpx.BaseTransport | None = None
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers=headers,
            timeout=self.timeout_s,
            transport=self.transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceLatencySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- LatencySource ----------------------------------------------------------------------

    def runtime_table(self, device_id: int, space: str) -> RuntimeTable:
        self.calls.runtime_table += 1
        body = self._request(
            "GET",
            f"/v1/devices/{device_id}/runtime-table",
            params={"space": space, "format": "json"},
        )
        return RuntimeTable.from_json(body)

    def predict(
        self, device_id: int, space: str, architectures: Sequence[Sequence[int]]
    ) -> Prediction:
        rows = [[int(i) for i in arch] for arch in architectures]
        if not rows:
            raise ValueError("nothing to predict: the batch of architectures is empty")
        latency: list[float] = []
        uncertainty: list[float] = []
        estimated: set[str] = set()
        versions: set[int] = set()
        for start in range(0, len(rows), MAX_PREDICT_BATCH):
            chunk = rows[start : start + MAX_PREDICT_BATCH]
            self.calls.predict += 1
            self.calls.predicted_architectures += len(chunk)
            answer = self._request(
                "POST",
                "/v1/predict",
                json={"device_id": device_id, "space": space, "architectures": chunk},
            )
            latency += [float(v) for v in answer["latency_ms"]]
            uncertainty += [float(v) for v in answer["uncertainty_ms"]]
            estimated.update(str(e["layer_key"]) for e in answer["estimated_layers"])
            versions.add(int(answer["predictor_version"]))
        if len(versions) != 1:
            raise LatencyServiceError(
                409, "predictor_changed", "the predictor changed during a batch; ask again"
            )
        return Prediction(
            tuple(latency), tuple(uncertainty), versions.pop(), tuple(sorted(estimated))
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

        Repeats of an architecture (within the job) count once, as their median.
        """
        rows = [[int(i) for i in arch] for arch in architectures]
        if not rows:
            raise ValueError("nothing to measure: the list of architectures is empty")
        body: dict[str, Any] = {
            "device_id": device_id,
            "kind": "profile_networks",
            "payload": {"space": space, "architectures": rows},
        }
        if settings:
            body["settings"] = dict(settings)
        self.calls.jobs += 1
        # Not retried: a retry after a lost answer would queue the measurement twice.
        job = self._request("POST", "/v1/jobs", json=body, retry=False)
        if run_agent is not None:
            run_agent()
        done = self._wait_for_job(int(job["id"]), timeout_s)
        ids = {int(i) for i in (done.get("result") or {}).get("ids", [])}
        grouped: dict[tuple[int, ...], list[float]] = defaultdict(list)
        params = {"device_id": device_id, "space": space}
        for row in self._pages("/v1/measurements/networks", params):
            if int(row["id"]) in ids:
                grouped[tuple(int(i) for i in row["architecture"])].append(float(row["median_ms"]))
        missing = [arch for arch in rows if tuple(arch) not in grouped]
        if missing:
            raise LatencyServiceError(
                500,
                "measurement_missing",
                f"job {job['id']} finished but stored no measurement of {len(missing)} "
                f"architecture(s), e.g. {missing[0]}; check the agent's log",
            )
        return [median(grouped[tuple(arch)]) for arch in rows]

    def _wait_for_job(self, job_id: int, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self._request("GET", f"/v1/jobs/{job_id}")
            if job["status"] == "done":
                return dict(job)
            if job["status"] == "failed":
                raise LatencyServiceError(
                    500, "job_failed", f"measuring job {job_id} failed: {job['error']}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"measuring job {job_id} is still {job['status']} after {timeout_s:.0f} s; "
                    "is an agent serving this device? (hwlat agent host | hwlat agent android)"
                )
            time.sleep(self.poll_s)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {**params, "limit": 1000}
        while True:
            page = self._request("GET", path, params=query)
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            query["cursor"] = page["next_cursor"]

    # -- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> Any:
        """The JSON answer; transport errors and 502-504 are retried (when ``retry``)."""
        retries = self.retries if retry else 0
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as error:
                if attempt >= retries:
                    raise LatencyServiceError(
                        0,
                        "unreachable",
                        f"cannot reach the latency service at {self.base_url} ({error}); "
                        "start it (hwlat serve) or pass --service / HWLAT_SERVICE_URL",
                    ) from error
            else:
                if response.status_code not in RETRY_STATUS or attempt >= retries:
                    return _answer(response)
            time.sleep(0.25 * 2**attempt)
            attempt += 1


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            error_body = response.json()
            code, detail = str(error_body["error"]), str(error_body["detail"])
        except (ValueError, KeyError, TypeError):
            code, detail = "http_error", response.text[:500]
        raise LatencyServiceError(response.status_code, code, detail)
    return response.json()
