"""The typed client against a real service process: typed answers, paging, errors, and which
calls are repeated after a failure (and that repeating them is harmless)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hwlat.service_process import free_port
from latency_api import HwlatClient, JobLease, LeaseLost, ServiceError, ServiceUnreachable
from latency_api.errors import AccessDenied, NotFound
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.jobs import JobIn, JobResult, ProfileLayers
from latency_api.schemas.measurements import LayerMeasurementIn
from models import get_space
from tests.fixtures.factories import HOST_DEVICE, LAYER_KEYS, layer_measurement
from tests.fixtures.services import Service

TINY = get_space("tiny-64")
DEVICE = DeviceIn.model_validate(HOST_DEVICE)

Predicate = Callable[[httpx.Request], bool]


class Faults(httpx.BaseTransport):
    """Forwards to the real service, but can drop the answer to a request it delivered
    (the service acted; the client hears a broken connection) or answer 503 itself."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.drop_answer: list[Predicate] = []
        self.refuse: list[Predicate] = []
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        for rule in self.refuse:
            if rule(request):
                self.refuse.remove(rule)
                return httpx.Response(503, json={"error": "unavailable", "detail": "injected"})
        response = self.inner.handle_request(request)
        for rule in self.drop_answer:
            if rule(request):
                self.drop_answer.remove(rule)
                response.read()
                response.close()
                raise httpx.ReadError(
                    "connection reset after the request was sent", request=request
                )
        return response


def once(method: str, path_end: str) -> Predicate:
    return lambda r: r.method == method and r.url.path.endswith(path_end)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def api(service: Service, faults: Faults) -> Iterator[HwlatClient]:
    with service.api(transport=faults, backoff_s=0.0, retries=2, page_size=40) as client:
        yield client


def layers(n: int, start_ms: float = 1.0) -> list[LayerMeasurementIn]:
    return [
        LayerMeasurementIn.model_validate(
            layer_measurement(LAYER_KEYS[i % len(LAYER_KEYS)], start_ms + i * 1e-4)
        )
        for i in range(n)
    ]


def test_answers_are_the_services_own_schemas(api: HwlatClient) -> None:
    assert api.health().database == "ok"
    device = api.register_device(DEVICE)
    assert device.id == api.register_device(DEVICE).id  # idempotent on the settings
    assert device.fingerprint_sha256 == DEVICE.fingerprint()
    assert api.get_device(device.id) == device
    assert device in api.list_devices()


def test_paging_walks_every_page(api: HwlatClient) -> None:
    device = api.register_device(DEVICE.model_copy(update={"name": "pager", "threads": 3})).id
    ids = api.upload_layers(device, layers(130), batch_size=50)
    assert len(ids) == 130
    stored = list(api.iter_layer_measurements(device_id=device))
    assert [m.id for m in stored] == ids  # 4 pages of 40, in order, none twice
    jobs = [
        api.create_job(JobIn(device_id=device, payload=ProfileLayers(layer_keys=LAYER_KEYS))).id
        for _ in range(45)
    ]
    assert [j.id for j in api.iter_jobs(device_id=device)] == jobs[::-1]


def test_errors_carry_the_services_code_and_detail(api: HwlatClient, service: Service) -> None:
    with pytest.raises(NotFound, match="no device with id 9999") as missing:
        api.get_device(9999)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with HwlatClient(service.url, "hwlat_not-a-token") as stranger, pytest.raises(AccessDenied):
        stranger.list_devices()
    nowhere = f"http://127.0.0.1:{free_port()}"
    with (
        HwlatClient(nowhere, retries=1, backoff_s=0.0) as nobody,
        pytest.raises(ServiceUnreachable, match="does not answer"),
    ):
        nobody.health()


def test_lost_answers_to_safe_calls_are_repeated_and_change_nothing(
    api: HwlatClient, faults: Faults
) -> None:
    device = api.register_device(DEVICE.model_copy(update={"name": "lossy", "threads": 2})).id
    job = api.create_job(JobIn(device_id=device, payload=ProfileLayers(layer_keys=LAYER_KEYS)))

    faults.drop_answer.append(once("POST", "/v1/jobs/claim"))
    claimed = api.claim(device, "agent-1", lease_s=60)
    assert claimed is not None
    assert (claimed.id, claimed.attempts) == (job.id, 1)  # the repeat got the same lease
    lease = JobLease.of(claimed)

    faults.drop_answer.append(once("POST", "/heartbeat"))
    assert api.heartbeat(lease, 60).status == "leased"

    faults.drop_answer.append(once("POST", "/v1/measurements/layers"))
    ids = api.upload_layers(device, layers(3), job=lease)
    assert len(ids) == 3
    assert [m.id for m in api.iter_layer_measurements(device_id=device)] == ids  # stored once

    faults.drop_answer.append(once("POST", "/complete"))
    done = api.complete(lease, JobResult(kind="layers", stored=3, ids=ids))
    assert done.status == "done"
    assert done.attempts == 1
    assert faults.seen.count(f"POST /v1/jobs/{job.id}/complete") == 2
    assert api.claim(device, "agent-1", lease_s=60) is None


def test_a_lost_answer_to_fail_or_to_one_batch_of_many_leaves_nothing_stuck_or_twice(
    api: HwlatClient, faults: Faults
) -> None:
    device = api.register_device(DEVICE.model_copy(update={"name": "flaky", "threads": 7})).id
    job = api.create_job(
        JobIn(device_id=device, payload=ProfileLayers(layer_keys=LAYER_KEYS), max_attempts=3)
    )
    first = api.claim(device, "agent-3", lease_s=60)
    assert first is not None

    faults.drop_answer.append(once("POST", f"/v1/jobs/{job.id}/fail"))
    given_back = api.fail(JobLease.of(first), "phone unplugged")
    assert (given_back.status, given_back.attempts) == ("queued", 1)  # not spent twice
    assert faults.seen.count(f"POST /v1/jobs/{job.id}/fail") == 2

    second = api.claim(device, "agent-3", lease_s=60)  # not stuck: claimable again
    assert second is not None
    assert (second.id, second.attempts) == (job.id, 2)
    lease = JobLease.of(second)
    # The answer to the second of three batches is lost: that batch alone is repeated.
    uploads = lambda r: r.method == "POST" and r.url.path == "/v1/measurements/layers"  # noqa: E731
    calls = iter(range(100))
    faults.drop_answer.append(lambda r: uploads(r) and next(calls) == 1)
    ids = api.upload_layers(device, layers(9), job=lease, batch_size=3)
    assert faults.seen.count("POST /v1/measurements/layers") == 4
    assert len(set(ids)) == 9
    assert [m.id for m in api.iter_layer_measurements(device_id=device)] == ids
    done = api.complete(lease, JobResult(kind="layers", stored=9, ids=ids))
    assert (done.status, done.attempts) == ("done", 2)
    assert api.claim(device, "agent-3", lease_s=60) is None


def test_unsafe_calls_are_not_repeated_but_reads_are(api: HwlatClient, faults: Faults) -> None:
    device = api.register_device(DEVICE.model_copy(update={"name": "careful", "threads": 4})).id
    faults.refuse.append(once("POST", "/v1/jobs"))
    with pytest.raises(ServiceError) as refused:
        api.create_job(JobIn(device_id=device, payload=ProfileLayers(layer_keys=LAYER_KEYS)))
    assert refused.value.status == 503
    assert faults.seen.count("POST /v1/jobs") == 1
    assert list(api.iter_jobs(device_id=device)) == []
    faults.refuse.append(once("GET", f"/v1/devices/{device}"))
    assert api.get_device(device).id == device
    assert faults.seen.count(f"GET /v1/devices/{device}") == 2


def test_a_lost_lease_is_its_own_error(api: HwlatClient) -> None:
    device = api.register_device(DEVICE.model_copy(update={"name": "late", "threads": 5})).id
    api.create_job(JobIn(device_id=device, payload=ProfileLayers(layer_keys=LAYER_KEYS)))
    claimed = api.claim(device, "agent-2", lease_s=60)
    assert claimed is not None
    with pytest.raises(LeaseLost, match="drop this work"):
        api.heartbeat(JobLease(claimed.id, "0" * 32), 60)


def test_a_predictor_taken_away_predicts_what_the_service_does(
    api: HwlatClient, tmp_path: Path
) -> None:
    device = api.register_device(DEVICE.model_copy(update={"name": "local", "threads": 6})).id
    table = {str(k): float(i + 1) for i, k in enumerate(TINY.variants())}
    api.upload_layers(
        device,
        [LayerMeasurementIn.model_validate(layer_measurement(k, ms)) for k, ms in table.items()],
    )
    api.fit_predictor(device)
    archs = [[int(c) for c in a] for a in TINY.sample(50, seed=8)]
    served = api.predict(device, TINY.name, archs)
    local = api.local_predictor(device)
    latency, _ = local.predict(TINY.name, archs)
    assert latency.tolist() == pytest.approx(served.latency_ms, rel=1e-12)
    table_json = api.runtime_table(device, TINY.name)
    assert [table_json.latency_ms(a) for a in archs] == pytest.approx(served.latency_ms)
