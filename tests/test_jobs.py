"""The profiling job queue: leases, heartbeats, retries and exactly-once completion."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.jobs import ClaimIn, JobIn, JobResult
from latency_service.db import make_engine, session_factory
from latency_service.devices import service as devices
from latency_service.errors import LeaseLost
from latency_service.jobs import service as jobs
from latency_service.measurements.tables import LayerMeasurement
from tests.fixtures.databases import FreshDatabase
from tests.fixtures.factories import HOST_DEVICE, LAYER_KEYS, Headers, layer_measurement

LAYERS = {"kind": "profile_layers", "layer_keys": LAYER_KEYS}
RESULT = {"kind": "layers", "stored": 3, "ids": [1, 2, 3]}


def new_job(client: TestClient, tokens: dict[str, Headers], **spec: Any) -> dict[str, Any]:
    body = {"payload": LAYERS, **spec}
    response = client.post("/v1/jobs", json=body, headers=tokens["admin"])
    assert response.status_code == 201, response.text
    return dict(response.json())


def claim(
    client: TestClient,
    tokens: dict[str, Headers],
    device: int,
    lease: float = 60,
    request_id: str | None = None,
) -> Any:
    body: dict[str, Any] = {"device_id": device, "agent": "test-agent", "lease_seconds": lease}
    if request_id is not None:
        body["request_id"] = request_id
    response = client.post("/v1/jobs/claim", json=body, headers=tokens["ingest"])
    assert response.status_code in (200, 204), response.text
    return None if response.status_code == 204 else response.json()


def test_jobs_need_admin_to_create(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    body = {"device_id": device, "payload": LAYERS}
    assert client.post("/v1/jobs", json=body, headers=tokens["ingest"]).status_code == 403


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (
            {"payload": {"kind": "profile_layers", "layer_keys": ["mbconv_hw1_i1_o1_k2_e1_s1"]}},
            "k2",
        ),
        ({"payload": {"kind": "profile_layers", "layer_keys": []}}, "layer_keys"),
        ({"payload": {"layer_keys": LAYER_KEYS}}, "kind"),
        ({"payload": {"kind": "profile_everything"}}, "profile_layers"),
        ({"selector": {"kind": "android"}, "payload": LAYERS}, "exactly one"),
        ({"selector": {"colour": "blue"}, "device_id": None, "payload": LAYERS}, "colour"),
        ({"payload": LAYERS, "timing": {"num_runs": 0}}, "num_runs"),
        ({"payload": LAYERS, "timing": {"warmup": 3}}, "warmup"),
        (
            {
                "payload": {
                    "kind": "profile_networks",
                    "space": "spnas-mobilenetv2-224",
                    "architectures": [[9] * 20],
                },
            },
            "position 0",
        ),
        (
            {"payload": {"kind": "profile_networks", "space": "nope", "architectures": [[0]]}},
            "unknown search space",
        ),
    ],
)
def test_bad_job_specs_are_422(
    client: TestClient, tokens: dict[str, Headers], device: int, spec: dict[str, Any], needle: str
) -> None:
    body = {"device_id": device, **spec}
    response = client.post("/v1/jobs", json=body, headers=tokens["admin"])
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]


def test_claim_takes_the_oldest_matching_job_then_nothing(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    new_job(client, tokens, selector={"kind": "android"})  # not for a host
    first = new_job(client, tokens, device_id=device)
    second = new_job(client, tokens, selector={"kind": "host", "runtime": "litert"})
    got = claim(client, tokens, device)
    assert got["id"] == first["id"]
    assert got["status"] == "leased"
    assert got["attempts"] == 1
    assert got["payload"] == {**LAYERS, "metrics": []}  # latency only, unless asked
    assert got["kind"] == "profile_layers"
    assert len(got["lease_token"]) == 32
    assert claim(client, tokens, device)["id"] == second["id"]
    assert claim(client, tokens, device) is None


def test_a_job_stores_only_the_timing_it_set(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    job = new_job(client, tokens, device_id=device, timing={"num_runs": 5})
    assert job["timing"] == {
        "warmup_runs": None,
        "num_runs": 5,
        "min_secs": None,
        "max_secs": None,
        "repeats": None,
        "cooldown_secs": None,
    }
    assert new_job(client, tokens, device_id=device)["timing"]["num_runs"] is None


def test_a_repeated_claim_gets_the_same_lease_not_a_second_job(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    first = new_job(client, tokens, device_id=device)
    second = new_job(client, tokens, device_id=device)
    got = claim(client, tokens, device, request_id="claim-1")
    # The answer was lost; the agent asks again with the same request id.
    again = claim(client, tokens, device, request_id="claim-1")
    assert (again["id"], again["lease_token"], again["attempts"]) == (
        first["id"],
        got["lease_token"],
        1,
    )
    assert claim(client, tokens, device, request_id="claim-2")["id"] == second["id"]


def test_complete_needs_the_lease_and_happens_once(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    new_job(client, tokens, device_id=device)
    job = claim(client, tokens, device)
    url = f"/v1/jobs/{job['id']}"
    wrong = client.post(
        f"{url}/complete",
        json={"lease_token": "x" * 32, "result": RESULT},
        headers=tokens["ingest"],
    )
    assert wrong.status_code == 409
    assert wrong.json()["error"] == "lease_lost"
    beat = client.post(
        f"{url}/heartbeat", json={"lease_token": job["lease_token"]}, headers=tokens["ingest"]
    )
    assert beat.status_code == 200
    done = client.post(
        f"{url}/complete",
        json={"lease_token": job["lease_token"], "result": RESULT},
        headers=tokens["ingest"],
    )
    assert done.status_code == 200
    assert done.json()["status"] == "done"
    assert done.json()["result"] == {**RESULT, "remeasured": 0}
    # The answer was lost and the agent repeats the call: answered again, nothing changes.
    again = client.post(
        f"{url}/complete",
        json={"lease_token": job["lease_token"], "result": RESULT},
        headers=tokens["ingest"],
    )
    assert again.status_code == 200
    assert again.json() == done.json()
    # Another lease cannot complete it.
    other = client.post(
        f"{url}/complete",
        json={"lease_token": "y" * 32, "result": RESULT},
        headers=tokens["ingest"],
    )
    assert other.status_code == 409


def test_a_repeated_fail_is_answered_again(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    new_job(client, tokens, device_id=device, max_attempts=3)
    job = claim(client, tokens, device)
    body = {"lease_token": job["lease_token"], "reason": "phone too hot"}
    first = client.post(f"/v1/jobs/{job['id']}/fail", json=body, headers=tokens["ingest"])
    again = client.post(f"/v1/jobs/{job['id']}/fail", json=body, headers=tokens["ingest"])
    assert first.status_code == again.status_code == 200
    assert again.json()["status"] == "queued"
    assert again.json()["attempts"] == 1  # the repeat did not spend an attempt


def test_job_lists_page_along_a_cursor(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    created = [new_job(client, tokens, device_id=device)["id"] for _ in range(7)]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3, "device_id": device}
    while True:
        page = client.get("/v1/jobs", params=params, headers=tokens["read"]).json()
        seen += [job["id"] for job in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == sorted(created, reverse=True)


def test_failures_are_retried_until_attempts_run_out(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    new_job(client, tokens, device_id=device, max_attempts=2)
    for attempt in (1, 2):
        job = claim(client, tokens, device)
        assert job["attempts"] == attempt
        failed = client.post(
            f"/v1/jobs/{job['id']}/fail",
            json={"lease_token": job["lease_token"], "reason": "adb: device offline"},
            headers=tokens["ingest"],
        ).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "adb: device offline"
    assert claim(client, tokens, device) is None


def test_an_expired_lease_returns_the_job_until_retries_are_spent(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    created = new_job(client, tokens, device_id=device, max_attempts=2)
    first = claim(client, tokens, device, lease=0.05)
    time.sleep(0.1)
    second = claim(client, tokens, device, lease=0.05)
    assert second["id"] == first["id"]
    assert second["attempts"] == 2
    late = client.post(
        f"/v1/jobs/{first['id']}/heartbeat",
        json={"lease_token": first["lease_token"]},
        headers=tokens["ingest"],
    )
    assert late.status_code == 409
    time.sleep(0.1)
    assert claim(client, tokens, device) is None
    final = client.get(f"/v1/jobs/{created['id']}", headers=tokens["read"]).json()
    assert final["status"] == "failed"
    assert "lease expired" in final["error"]


def test_uploads_tied_to_a_lost_lease_store_nothing(
    client: TestClient, tokens: dict[str, Headers], device: int, session: Session
) -> None:
    new_job(client, tokens, device_id=device)
    job = claim(client, tokens, device, lease=0.05)
    batch = {
        "device_id": device,
        "measurements": [layer_measurement()],
        "job": {"id": job["id"], "lease_token": job["lease_token"]},
    }
    time.sleep(0.1)
    late = client.post("/v1/measurements/layers", json=batch, headers=tokens["ingest"])
    assert late.status_code == 409
    assert session.scalar(select(func.count()).select_from(LayerMeasurement)) == 0
    job = claim(client, tokens, device)
    batch["job"] = {"id": job["id"], "lease_token": job["lease_token"]}
    assert (
        client.post("/v1/measurements/layers", json=batch, headers=tokens["ingest"]).status_code
        == 201
    )


def test_work_of_a_lease_that_never_completed_is_stored_once(
    client: TestClient, tokens: dict[str, Headers], device: int, session: Session
) -> None:
    """An agent uploads, then dies before `complete`: the next lease's upload replaces it."""
    new_job(client, tokens, device_id=device)
    dead = claim(client, tokens, device, lease=0.2)

    def upload(job: dict[str, Any], median_ms: float) -> list[int]:
        batch = {
            "device_id": device,
            "measurements": [layer_measurement(k, median_ms) for k in LAYER_KEYS],
            "job": {"id": job["id"], "lease_token": job["lease_token"]},
        }
        response = client.post("/v1/measurements/layers", json=batch, headers=tokens["ingest"])
        assert response.status_code == 201, response.text
        return list(response.json()["ids"])

    upload(dead, 1.0)
    time.sleep(0.3)
    second = claim(client, tokens, device)
    assert (second["id"], second["attempts"]) == (dead["id"], 2)
    assert session.scalar(select(func.count()).select_from(LayerMeasurement)) == 0
    ids = upload(second, 2.0)
    done = client.post(
        f"/v1/jobs/{second['id']}/complete",
        json={"lease_token": second["lease_token"], "result": {**RESULT, "ids": ids}},
        headers=tokens["ingest"],
    )
    assert done.status_code == 200, done.text
    rows = session.scalars(select(LayerMeasurement).order_by(LayerMeasurement.id)).all()
    assert [(r.id, r.layer_key, r.median_ms) for r in rows] == [
        (i, k, 2.0) for i, k in zip(ids, LAYER_KEYS, strict=True)
    ]


def test_text_the_database_cannot_store_is_422_not_500(
    client: TestClient, tokens: dict[str, Headers], device: int, backend: str
) -> None:
    """Found by Schemathesis: a NUL character in the agent's name broke PostgreSQL's UPDATE of
    the leased job (SQLite stores it)."""
    new_job(client, tokens, device_id=device)
    body = {"device_id": device, "agent": "agent\u0000one", "lease_seconds": 60}
    response = client.post("/v1/jobs/claim", json=body, headers=tokens["ingest"])
    if backend == "postgresql":
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_input"
        assert "NUL" in response.json()["detail"]
    else:
        assert response.status_code == 200, response.text


# -- several agents at once, on committed data ---------------------------------------------


@pytest.fixture
def shared_db(backend: str, fresh_database: FreshDatabase) -> str:
    return fresh_database(backend, migrated=True)


def test_concurrent_agents_complete_every_job_exactly_once(shared_db: str) -> None:
    engine = make_engine(shared_db)
    factory = session_factory(engine)
    n_jobs, n_agents = 60, 6
    with factory() as session:
        device, _ = devices.register(session, DeviceIn.model_validate(HOST_DEVICE))
        for _ in range(n_jobs):
            jobs.create(
                session,
                JobIn.model_validate({"device_id": device.id, "payload": LAYERS}),
            )
    completions: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(n_agents)
    errors: list[BaseException] = []

    def agent(name: str) -> None:
        try:
            start.wait(timeout=10)
            with factory() as session:
                while True:
                    claimed = jobs.claim(session, ClaimIn(device_id=device.id, agent=name))
                    if claimed is None:
                        return
                    job, token = claimed
                    try:
                        jobs.complete(session, job.id, token, JobResult.model_validate(RESULT))
                    except LeaseLost:
                        continue
                    with lock:
                        completions[job.id] += 1
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=agent, args=(f"agent-{i}",)) for i in range(n_agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)
    assert len(completions) == n_jobs
    assert set(completions.values()) == {1}
