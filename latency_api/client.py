"""The typed client of the latency service: one method per route, the service's own schemas.

Retries follow what is safe to repeat. Reads, predict, device registration (idempotent on its
settings), uploads (each batch carries one Idempotency-Key for all its attempts), claims
(each carries a request id the service remembers), heartbeats, complete and fail (the service
answers a repeat with the same lease token as it answered the first) are retried on transport
errors and on 502/503/504, with exponential backoff (by default 8 retries over about 40 s, long
enough to ride out a restart of the service or of its database). Everything else is retried
only when the connection was never made, so it cannot have reached the service.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from latency_api.errors import JobsTimedOut, ServiceError, ServiceUnreachable
from latency_api.schemas.common import HealthOut
from latency_api.schemas.devices import DeviceIn, DeviceList, DeviceOut
from latency_api.schemas.enums import DeviceMetric, ErrorCode, JobStatus, Scope
from latency_api.schemas.jobs import (
    ClaimedJob,
    ClaimIn,
    CompleteIn,
    FailIn,
    JobIn,
    JobOut,
    JobRef,
    JobResult,
    LeaseIn,
)
from latency_api.schemas.measurements import (
    DriftOut,
    ExportFormat,
    IngestOut,
    LayerCurrent,
    LayerMeasurementIn,
    LayerMeasurementOut,
    LayerRole,
    NetworkMeasurementIn,
    NetworkMeasurementOut,
)
from latency_api.schemas.plans import PlanIn, PlanOut
from latency_api.schemas.predictors import (
    MAX_ARCHITECTURES,
    FitIn,
    OfaConfig,
    PredictIn,
    PredictorArtifactOut,
    PredictorList,
    PredictorOut,
    PredictOut,
    RuntimeTable,
)
from latency_api.schemas.spaces import SpaceList, SpaceOut, SpaceSpecIn
from latency_api.schemas.tokens import TokenCreated, TokenIn, TokenList, TokenOut
from latency_api.schemas.validations import (
    MetricValidationIn,
    MetricValidationOut,
    ValidationIn,
    ValidationList,
    ValidationOut,
)
from models.search_space import SearchSpace
from models.space_spec import SpaceSpec, spec_from_dict
from models.spaces import get_space as models_get_space
from models.spaces import known_space, register_space
from predictor.channel_cost import ChannelCost

if TYPE_CHECKING:
    from predictor.local import LocalPredictor

RETRY_STATUS = frozenset({502, 503, 504})
PAGE_LIMIT = 1000
UPLOAD_BATCH = 500

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class JobLease:
    """A claimed job as its lease: what heartbeat, upload, complete and fail carry."""

    id: int
    lease_token: str

    @classmethod
    def of(cls, job: ClaimedJob) -> JobLease:
        return cls(job.id, job.lease_token)

    def ref(self) -> JobRef:
        return JobRef(id=self.id, lease_token=self.lease_token)


class HwlatClient:
    """``with HwlatClient(url, token) as client: client.predict(...)``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 8,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_LIMIT,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        if not 1 <= page_size <= PAGE_LIMIT:
            raise ValueError(f"page_size={page_size}; the service pages 1 to {PAGE_LIMIT} items")
        self._page_size = page_size

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HwlatClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- service ----------------------------------------------------------------------------

    def health(self) -> HealthOut:
        """``GET /healthz``; raises if the service or its database is down."""
        return self._get("/healthz", HealthOut)

    # -- devices ----------------------------------------------------------------------------

    def register_device(self, device: DeviceIn) -> DeviceOut:
        """Idempotent on the device's settings: the same device gets the same id."""
        response = self._send("POST", "/v1/devices", json=_body(device), retry=True)
        return DeviceOut.model_validate_json(response.content)

    def list_devices(self, name: str | None = None) -> list[DeviceOut]:
        return self._get("/v1/devices", DeviceList, params={"name": name}).items

    def get_device(self, device_id: int) -> DeviceOut:
        return self._get(f"/v1/devices/{device_id}", DeviceOut)

    def current_layers(self, device_id: int) -> list[LayerCurrent]:
        """The current value of every measured layer (median of its history, outliers flagged)."""
        response = self._send("GET", f"/v1/devices/{device_id}/layers", retry=True)
        return _LAYER_CURRENT_LIST.validate_json(response.content)

    def drift(self, device_id: int) -> DriftOut:
        """How the device's drift reference moved across jobs."""
        return self._get(f"/v1/devices/{device_id}/drift", DriftOut)

    # -- search spaces ----------------------------------------------------------------------

    def register_space(self, spec: SpaceSpec | Mapping[str, Any]) -> SpaceOut:
        """Register a search space spec under its name (idempotent for the same spec; another
        spec under a taken name raises ``ServiceError`` with code ``conflict``)."""
        parsed = spec if isinstance(spec, SpaceSpec) else spec_from_dict(spec)
        body = SpaceSpecIn(parsed).model_dump(mode="json")
        response = self._send("POST", "/v1/spaces", json=body, retry=True)
        out = SpaceOut.model_validate_json(response.content)
        register_space(parsed)  # the service took it: this process knows it by name too
        return out

    def list_spaces(self) -> list[SpaceOut]:
        return self._get("/v1/spaces", SpaceList).items

    def get_space(self, name: str) -> SpaceOut:
        return self._get(f"/v1/spaces/{quote(name, safe='')}", SpaceOut)

    def space(self, name: str) -> SearchSpace:
        """The space ``name`` decoded in this process: built in, already fetched, or fetched
        from the service now (and known by name to ``models.get_space`` from then on)."""
        if known_space(name):
            return models_get_space(name)
        return register_space(spec_from_dict(self.get_space(name).spec))

    # -- measurements -----------------------------------------------------------------------

    def upload_layers(
        self,
        device_id: int,
        measurements: Sequence[LayerMeasurementIn],
        *,
        job: JobLease | None = None,
        batch_size: int = UPLOAD_BATCH,
    ) -> list[int]:
        """Store layer measurements in batches (each all or nothing); the stored ids."""
        return self._upload("layers", device_id, measurements, job, batch_size)

    def upload_networks(
        self,
        device_id: int,
        measurements: Sequence[NetworkMeasurementIn],
        *,
        job: JobLease | None = None,
        batch_size: int = UPLOAD_BATCH,
    ) -> list[int]:
        return self._upload("networks", device_id, measurements, job, batch_size)

    def iter_layer_measurements(
        self,
        *,
        device_id: int | None = None,
        layer_key: str | None = None,
        accepted: bool | None = None,
        role: LayerRole | None = None,
    ) -> Iterator[LayerMeasurementOut]:
        """Every stored layer measurement matching the filters, oldest first, page by page."""
        params = {
            "device_id": device_id,
            "layer_key": layer_key,
            "accepted": accepted,
            "role": role,
        }
        return self._pages("/v1/measurements/layers", params, LayerMeasurementOut)

    def iter_network_measurements(
        self,
        *,
        device_id: int | None = None,
        space: str | None = None,
        accepted: bool | None = None,
    ) -> Iterator[NetworkMeasurementOut]:
        params = {"device_id": device_id, "space": space, "accepted": accepted}
        return self._pages("/v1/measurements/networks", params, NetworkMeasurementOut)

    def export_measurements(
        self, kind: str, *, format: ExportFormat = "csv", device_id: int | None = None
    ) -> Iterator[bytes]:
        """The service's CSV or JSON export of ``layers`` or ``networks``, streamed."""
        _check_kind(kind)
        params = _params({"format": format, "device_id": device_id})
        with self._http.stream("GET", f"/v1/measurements/{kind}/export", params=params) as answer:
            if answer.status_code >= 400:
                answer.read()
                raise _error(answer)
            yield from answer.iter_bytes()

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, job: JobIn) -> JobOut:
        response = self._send("POST", "/v1/jobs", json=_body(job), retry=False)
        return JobOut.model_validate_json(response.content)

    def get_job(self, job_id: int) -> JobOut:
        return self._get(f"/v1/jobs/{job_id}", JobOut)

    def wait_for_jobs(
        self, job_ids: Sequence[int], timeout_s: float, poll_s: float = 2.0
    ) -> list[JobOut]:
        """The jobs once every one has finished (done or failed), in the order given; a
        :class:`JobsTimedOut` (a ``TimeoutError``) naming one still open after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            jobs = [self.get_job(i) for i in job_ids]
            waiting = [j for j in jobs if j.status not in (JobStatus.done, JobStatus.failed)]
            if not waiting:
                return jobs
            if time.monotonic() > deadline:
                raise JobsTimedOut(
                    f"measuring job {waiting[0].id} is still {waiting[0].status} after "
                    f"{timeout_s:.0f} s ({len(waiting)} of {len(jobs)} not done); is an agent "
                    "serving this device? (hwlat agent host | hwlat agent android)"
                )
            time.sleep(poll_s)

    def iter_jobs(
        self, *, status: JobStatus | str | None = None, device_id: int | None = None
    ) -> Iterator[JobOut]:
        """Every job matching the filters, newest first, page by page."""
        params = {"status": None if status is None else str(status), "device_id": device_id}
        return self._pages("/v1/jobs", params, JobOut)

    def claim(self, device_id: int, agent: str, lease_s: float) -> ClaimedJob | None:
        """Lease the oldest job this device may run; None when there is none."""
        body = ClaimIn(
            device_id=device_id, agent=agent, lease_seconds=lease_s, request_id=uuid.uuid4().hex
        )
        response = self._send("POST", "/v1/jobs/claim", json=_body(body), retry=True)
        if response.status_code == 204:
            return None
        return ClaimedJob.model_validate_json(response.content)

    def heartbeat(self, lease: JobLease, lease_s: float) -> JobOut:
        """Extend the lease; raises :class:`LeaseLost` if it already ran out."""
        body = LeaseIn(lease_token=lease.lease_token, lease_seconds=lease_s)
        response = self._send(
            "POST", f"/v1/jobs/{lease.id}/heartbeat", json=_body(body), retry=True
        )
        return JobOut.model_validate_json(response.content)

    def complete(self, lease: JobLease, result: JobResult) -> JobOut:
        body = CompleteIn(lease_token=lease.lease_token, result=result)
        response = self._send("POST", f"/v1/jobs/{lease.id}/complete", json=_body(body), retry=True)
        return JobOut.model_validate_json(response.content)

    def fail(self, lease: JobLease, reason: str, *, retry: bool = True) -> JobOut:
        """Give the job back (queued again while attempts remain), or fail it for good."""
        body = FailIn(lease_token=lease.lease_token, reason=reason[:10_000], retry=retry)
        response = self._send("POST", f"/v1/jobs/{lease.id}/fail", json=_body(body), retry=True)
        return JobOut.model_validate_json(response.content)

    # -- predictors -------------------------------------------------------------------------

    def fit_predictor(self, device_id: int, spec: FitIn | None = None) -> PredictorOut:
        """A new predictor version from the device's current measurements."""
        response = self._send(
            "POST",
            f"/v1/devices/{device_id}/predictors",
            json=None if spec is None else _body(spec),
            retry=False,
        )
        return PredictorOut.model_validate_json(response.content)

    def plan(self, device_id: int, spec: PlanIn) -> PlanOut:
        """What the device should measure next in a space (active sampling), and the jobs
        queued for it (each fits a new predictor version when it completes)."""
        response = self._send(
            "POST", f"/v1/devices/{device_id}/plans", json=_body(spec), retry=False
        )
        return PlanOut.model_validate_json(response.content)

    def list_predictors(self, device_id: int) -> list[PredictorOut]:
        return self._get(f"/v1/devices/{device_id}/predictors", PredictorList).items

    def get_predictor(self, device_id: int, version: int | None = None) -> PredictorArtifactOut:
        """A version (default: the newest) with its artifact."""
        which = "latest" if version is None else str(version)
        return self._get(f"/v1/devices/{device_id}/predictors/{which}", PredictorArtifactOut)

    def local_predictor(self, device_id: int, version: int | None = None) -> LocalPredictor:
        """A predictor version that predicts in this process, without further requests."""
        # Imported here: it needs NumPy, which the rest of the client does not.
        try:
            from predictor.local import LocalPredictor
        except ModuleNotFoundError as error:
            if error.name != "numpy":
                raise
            raise ModuleNotFoundError(
                "local_predictor() needs NumPy: pip install 'hwlat[local]'", name="numpy"
            ) from error

        return LocalPredictor.from_wire(self.get_predictor(device_id, version))

    def predict(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        breakdown: bool = False,
        metrics: Sequence[DeviceMetric | str] = (),
    ) -> PredictOut:
        """Latency of architectures of ``space``, in requests of at most 100,000; with
        ``metrics`` (memory, energy) those too (``peak_memory_mb``, ``energy_mj``)."""
        rows = [[int(c) for c in a] for a in architectures]
        wanted = [DeviceMetric(m) for m in metrics]
        answers = [
            self._predict(
                PredictIn(
                    device_id=device_id,
                    space=space,
                    architectures=rows[start : start + MAX_ARCHITECTURES],
                    breakdown=breakdown,
                    metrics=wanted,
                )
            )
            for start in range(0, max(len(rows), 1), MAX_ARCHITECTURES)
        ]
        return _merge(answers)

    def predict_ofa(
        self, device_id: int, space: str, configs: Sequence[Mapping[str, Any]]
    ) -> PredictOut:
        """Latency of subnets of an OFA-style ``space`` given in Once-for-All's encoding
        (``{"ks": [...], "e": [...], "d": [...], "r": 224}``), with the space's a·Σ+b."""
        parsed = [OfaConfig.model_validate(c) for c in configs]
        answers = [
            self._predict(
                PredictIn(
                    device_id=device_id,
                    space=space,
                    ofa_configs=parsed[start : start + MAX_ARCHITECTURES],
                )
            )
            for start in range(0, max(len(parsed), 1), MAX_ARCHITECTURES)
        ]
        return _merge(answers)

    def predict_layers(
        self,
        device_id: int,
        networks: Sequence[Sequence[str]],
        *,
        space: str | None = None,
        breakdown: bool = False,
    ) -> PredictOut:
        """Latency of networks given as their layer keys (``space`` applies its calibration)."""
        request = PredictIn(
            device_id=device_id,
            space=space,
            layers=[list(n) for n in networks],
            breakdown=breakdown,
        )
        return self._predict(request)

    def runtime_table(self, device_id: int, space: str) -> RuntimeTable:
        """Searchable layer x candidate latencies of ``space``, with the calibration."""
        return self._get(
            f"/v1/devices/{device_id}/runtime-table",
            RuntimeTable,
            params={"space": space, "format": "json"},
        )

    def channel_cost(self, device_id: int, space: str) -> ChannelCost:
        """The device's latency over a channel space as a smooth function of its channel
        counts (``nas.channel_cost.ChannelCostModule`` evaluates it in torch)."""
        from pydantic import TypeAdapter

        response = self._send(
            "GET", f"/v1/devices/{device_id}/channel-cost", params={"space": space}, retry=True
        )
        return TypeAdapter(ChannelCost).validate_json(response.content)

    def runtime_table_file(self, device_id: int, space: str, format: str) -> str:
        """The table as another tool's file: ``spnas`` (the seed's JSON) or ``ofa`` (YAML)."""
        response = self._send(
            "GET",
            f"/v1/devices/{device_id}/runtime-table",
            params={"space": space, "format": format},
            retry=True,
        )
        return response.text

    def import_runtime_table(
        self,
        device_id: int,
        content: str,
        *,
        space: str,
        format: str,
        constant_ms: float | None = None,
    ) -> PredictorOut:
        """A published table (``spnas`` or ``ofa`` format) as a new predictor version."""
        response = self._send(
            "POST",
            f"/v1/devices/{device_id}/runtime-table",
            params={"space": space, "format": format, "constant_ms": constant_ms},
            content=content.encode(),
            headers={"Content-Type": "text/plain"},
            retry=False,
        )
        return PredictorOut.model_validate_json(response.content)

    # -- validations ------------------------------------------------------------------------

    def validate(self, device_id: int, request: ValidationIn) -> ValidationOut:
        """Have the service validate a predictor version on stored network measurements."""
        response = self._send(
            "POST", f"/v1/devices/{device_id}/validations", json=_body(request), retry=False
        )
        return ValidationOut.model_validate_json(response.content)

    def validate_metric(self, device_id: int, request: MetricValidationIn) -> MetricValidationOut:
        """Have the service validate a version's peak memory or energy on measured networks."""
        # Computed, not stored: a retry cannot store anything twice.
        response = self._send(
            "POST", f"/v1/devices/{device_id}/validations/metrics", json=_body(request), retry=True
        )
        return MetricValidationOut.model_validate_json(response.content)

    def list_validations(self, device_id: int) -> list[ValidationOut]:
        return self._get(f"/v1/devices/{device_id}/validations", ValidationList).items

    # -- tokens -----------------------------------------------------------------------------

    def create_token(self, name: str, scope: Scope | str) -> TokenCreated:
        body = TokenIn(name=name, scope=Scope.parse(str(scope)))
        response = self._send("POST", "/v1/tokens", json=_body(body), retry=False)
        return TokenCreated.model_validate_json(response.content)

    def list_tokens(self) -> list[TokenOut]:
        return self._get("/v1/tokens", TokenList).items

    def revoke_token(self, token_id: int) -> TokenOut:
        response = self._send("DELETE", f"/v1/tokens/{token_id}", retry=True)
        return TokenOut.model_validate_json(response.content)

    # -- plumbing ---------------------------------------------------------------------------

    def _get(self, path: str, model: type[M], params: Mapping[str, Any] | None = None) -> M:
        response = self._send("GET", path, params=params, retry=True)
        return model.model_validate_json(response.content)

    def _predict(self, request: PredictIn) -> PredictOut:
        # Predicting reads only, so a repeat is harmless.
        response = self._send("POST", "/v1/predict", json=_body(request), retry=True)
        return PredictOut.model_validate_json(response.content)

    def _upload(
        self,
        kind: str,
        device_id: int,
        measurements: Sequence[LayerMeasurementIn] | Sequence[NetworkMeasurementIn],
        job: JobLease | None,
        batch_size: int,
    ) -> list[int]:
        _check_kind(kind)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; need at least 1")
        ids: list[int] = []
        for start in range(0, len(measurements), batch_size):
            body: dict[str, Any] = {
                "device_id": device_id,
                "measurements": [_body(m) for m in measurements[start : start + batch_size]],
            }
            if job is not None:
                body["job"] = _body(job.ref())
            # One key for every attempt at this batch: a retry after a lost answer is
            # answered as the first attempt was, and stores nothing twice.
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            response = self._send(
                "POST", f"/v1/measurements/{kind}", json=body, headers=headers, retry=True
            )
            ids += IngestOut.model_validate_json(response.content).ids
        return ids

    def _pages(self, path: str, filters: Mapping[str, Any], model: type[M]) -> Iterator[M]:
        params = {**filters, "limit": self._page_size}
        while True:
            response = self._send("GET", path, params=params, retry=True)
            page = response.json()
            for item in page["items"]:
                yield model.model_validate(item)
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def _send(
        self,
        method: str,
        path: str,
        *,
        retry: bool,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        query = _params(params or {})
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._http.request(
                    method, path, json=json, params=query, content=content, headers=headers
                )
            except httpx.TransportError as error:
                # A request that never connected cannot have reached the service.
                never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                if last or not (retry or never_sent):
                    raise ServiceUnreachable(self.base_url, _reason(error)) from error
            else:
                if response.status_code < 400:
                    return response
                if last or not retry or response.status_code not in RETRY_STATUS:
                    raise _error(response)
            self._sleep(min(self._backoff_s * 2**attempt, self._max_backoff_s))
        raise AssertionError("unreachable: the last attempt returns or raises")


def _body(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_none=True)


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _check_kind(kind: str) -> None:
    if kind not in ("layers", "networks"):
        raise ValueError(f"kind must be 'layers' or 'networks', not {kind!r}")


def _error(response: httpx.Response) -> ServiceError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return ServiceError.from_answer(response.status_code, body, response.text)


def _reason(error: httpx.TransportError) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _merge(answers: list[PredictOut]) -> PredictOut:
    """One answer from the answers to consecutive chunks of a request."""
    first = answers[0]
    if len(answers) == 1:
        return first
    versions = {a.predictor_version for a in answers}
    if len(versions) > 1:
        raise ServiceError(
            409,
            ErrorCode.predictor_changed,
            f"a new predictor version appeared while predicting (versions {sorted(versions)}); "
            "ask again",
        )
    estimated = {
        (e.layer_key, e.position, e.candidate): e for a in answers for e in a.estimated_layers
    }
    breakdown = None
    if first.breakdown_ms is not None:
        breakdown = [row for a in answers for row in a.breakdown_ms or []]
    return first.model_copy(
        update={
            "latency_ms": [v for a in answers for v in a.latency_ms],
            "uncertainty_ms": [v for a in answers for v in a.uncertainty_ms],
            "estimated_layers": list(estimated.values()),
            "estimated_count": None
            if first.estimated_count is None
            else [v for a in answers for v in a.estimated_count or []],
            "breakdown_ms": breakdown,
            "peak_memory_mb": None
            if first.peak_memory_mb is None
            else [v for a in answers for v in a.peak_memory_mb or []],
            "energy_mj": None
            if first.energy_mj is None
            else [v for a in answers for v in a.energy_mj or []],
        }
    )


_LAYER_CURRENT_LIST = TypeAdapter(list[LayerCurrent])
