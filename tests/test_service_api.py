"""The service's HTTP API against real SQLite and PostgreSQL (each test rolled back)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.measurements.tables import LayerMeasurement, NetworkMeasurement
from tests.fixtures.factories import (
    HOST_DEVICE,
    LAYER_KEYS,
    Headers,
    layer_measurement,
    network_measurement,
)


def register(client: TestClient, headers: Headers, **over: Any) -> int:
    response = client.post("/v1/devices", json={**HOST_DEVICE, **over}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


def count_layers(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LayerMeasurement)) or 0)


def assert_error(response: Any, status: int, code: str, *needles: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    for needle in needles:
        assert needle in body["detail"], body["detail"]


# -- health and auth -------------------------------------------------------------------------


def test_healthz_reports_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_missing_token_is_401(client: TestClient) -> None:
    assert_error(client.get("/v1/devices"), 401, "not_authenticated", "Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer hwlat_not-a-real-token"])
def test_bad_tokens_are_401(client: TestClient, header: str) -> None:
    assert_error(
        client.get("/v1/devices", headers={"Authorization": header}), 401, "not_authenticated"
    )


# Which scope may call which route: tests/test_access.py walks all of them.


def test_tokens_are_stored_hashed(session: Session, tokens: dict[str, Headers]) -> None:
    from latency_service.auth.tables import ApiToken

    secrets = {h["Authorization"].split()[1] for h in tokens.values()}
    stored = set(session.scalars(select(ApiToken.token_hash)))
    assert stored.isdisjoint(secrets)
    assert len(stored) == 3


# -- devices ---------------------------------------------------------------------------------


def test_device_registration_is_idempotent_on_settings(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    first = client.post("/v1/devices", json=HOST_DEVICE, headers=tokens["ingest"])
    assert first.status_code == 201
    again = client.post(
        "/v1/devices", json={**HOST_DEVICE, "name": "renamed"}, headers=tokens["ingest"]
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/v1/devices", json={**HOST_DEVICE, "threads": 2}, headers=tokens["ingest"])
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    listed = client.get("/v1/devices", headers=tokens["read"]).json()["items"]
    assert [d["threads"] for d in listed] == [1, 2]


def test_device_validation_names_the_field(client: TestClient, tokens: dict[str, Headers]) -> None:
    response = client.post(
        "/v1/devices", json={**HOST_DEVICE, "runtime": "tvm"}, headers=tokens["ingest"]
    )
    assert_error(response, 422, "validation_error", "runtime")


def test_unknown_device_is_404(client: TestClient, tokens: dict[str, Headers]) -> None:
    assert_error(client.get("/v1/devices/999", headers=tokens["read"]), 404, "not_found", "999")


# -- ingest ----------------------------------------------------------------------------------


def test_layer_batch_is_stored_and_listed(
    client: TestClient, tokens: dict[str, Headers], session: Session
) -> None:
    device = register(client, tokens["ingest"])
    batch = {
        "device_id": device,
        "measurements": [layer_measurement(k, 1.0 + i) for i, k in enumerate(LAYER_KEYS)],
    }
    response = client.post("/v1/measurements/layers", json=batch, headers=tokens["ingest"])
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == 3
    assert count_layers(session) == 3
    page = client.get(
        "/v1/measurements/layers", params={"device_id": device}, headers=tokens["read"]
    ).json()
    assert [m["layer_key"] for m in page["items"]] == LAYER_KEYS
    assert [m["median_ms"] for m in page["items"]] == [1.0, 2.0, 3.0]
    assert page["items"][0]["temp_after_c"] == 41.5
    assert page["next_cursor"] is None


def test_layer_keys_are_stored_canonically(client: TestClient, tokens: dict[str, Headers]) -> None:
    device = register(client, tokens["ingest"])
    batch = {
        "device_id": device,
        "measurements": [layer_measurement("mbconv_s2_k5_e6_hw56_i24_o40")],
    }
    assert (
        client.post("/v1/measurements/layers", json=batch, headers=tokens["ingest"]).status_code
        == 201
    )
    stored = client.get("/v1/measurements/layers", headers=tokens["read"]).json()["items"]
    assert stored[0]["layer_key"] == "mbconv_hw56_i24_o40_k5_e6_s2"


def test_idempotent_retry_stores_once_and_answers_the_same(
    client: TestClient, tokens: dict[str, Headers], session: Session
) -> None:
    device = register(client, tokens["ingest"])
    batch = {"device_id": device, "measurements": [layer_measurement(k) for k in LAYER_KEYS]}
    headers = {**tokens["ingest"], "Idempotency-Key": "upload-1"}
    first = client.post("/v1/measurements/layers", json=batch, headers=headers)
    second = client.post("/v1/measurements/layers", json=batch, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert count_layers(session) == 3


def test_reused_idempotency_key_with_other_data_is_409(
    client: TestClient, tokens: dict[str, Headers], session: Session
) -> None:
    device = register(client, tokens["ingest"])
    headers = {**tokens["ingest"], "Idempotency-Key": "upload-1"}
    batch = {"device_id": device, "measurements": [layer_measurement()]}
    assert client.post("/v1/measurements/layers", json=batch, headers=headers).status_code == 201
    batch["measurements"][0]["median_ms"] = 0.99
    response = client.post("/v1/measurements/layers", json=batch, headers=headers)
    assert_error(response, 409, "idempotency_key_reused", "upload-1")
    assert count_layers(session) == 1


BAD_ITEMS: list[tuple[str, dict[str, Any], str]] = [
    ("negative", {"median_ms": -1.0}, "median_ms"),
    ("zero", {"min_ms": 0.0}, "min_ms"),
    ("order", {"median_ms": 5.0}, "min_ms <= median_ms <= max_ms"),
    ("count", {"count": 0}, "count"),
    ("key", {"layer_key": "mbconv_hw56_i24_o40_k4_e6_s2"}, "k4"),
    ("unknown-field", {"latency": 3}, "latency"),
]


@pytest.mark.parametrize(("case", "change", "needle"), BAD_ITEMS, ids=[c[0] for c in BAD_ITEMS])
def test_bad_item_rejects_the_whole_batch_and_names_it(
    client: TestClient,
    tokens: dict[str, Headers],
    session: Session,
    case: str,
    change: dict[str, Any],
    needle: str,
) -> None:
    device = register(client, tokens["ingest"])
    items = [layer_measurement(k) for k in LAYER_KEYS]
    items[2].update(change)
    response = client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    assert_error(response, 422, "validation_error", "measurements.2", needle)
    assert count_layers(session) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_latencies_are_rejected(
    client: TestClient, tokens: dict[str, Headers], session: Session, literal: str
) -> None:
    device = register(client, tokens["ingest"])
    text = json.dumps(
        {
            "device_id": device,
            "measurements": [layer_measurement(), layer_measurement(mean_ms=123456.0)],
        }
    )
    text = text.replace("123456.0", literal)
    response = client.post(
        "/v1/measurements/layers",
        content=text,
        headers={**tokens["ingest"], "Content-Type": "application/json"},
    )
    assert_error(response, 422, "validation_error", "measurements.1.mean_ms")
    assert count_layers(session) == 0


def test_unknown_device_in_a_batch_is_404_and_stores_nothing(
    client: TestClient, tokens: dict[str, Headers], session: Session
) -> None:
    response = client.post(
        "/v1/measurements/layers",
        json={"device_id": 4242, "measurements": [layer_measurement()]},
        headers=tokens["ingest"],
    )
    assert_error(response, 404, "not_found", "4242")
    assert count_layers(session) == 0


def test_oversized_batch_is_413(
    client: TestClient, tokens: dict[str, Headers], session: Session
) -> None:
    device = register(client, tokens["ingest"])
    items = [layer_measurement() for _ in range(51)]  # the test settings allow 50
    response = client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    assert_error(response, 413, "batch_too_large", "51", "50")
    assert count_layers(session) == 0


def test_empty_batch_is_rejected(client: TestClient, tokens: dict[str, Headers]) -> None:
    device = register(client, tokens["ingest"])
    response = client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": []},
        headers=tokens["ingest"],
    )
    assert_error(response, 422, "validation_error", "measurements")


def test_network_measurements_validate_the_architecture(
    client: TestClient, tokens: dict[str, Headers], session: Session
) -> None:
    device = register(client, tokens["ingest"])
    good = network_measurement([0, 1, 4, 2] * 5)
    response = client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": [good]},
        headers=tokens["ingest"],
    )
    assert response.status_code == 201, response.text
    bad = network_measurement([4] + [0] * 19)
    response = client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": [good, bad]},
        headers=tokens["ingest"],
    )
    assert_error(response, 422, "validation_error", "measurements.1", "position 0")
    assert session.scalar(select(func.count()).select_from(NetworkMeasurement)) == 1
    listed = client.get("/v1/measurements/networks", headers=tokens["read"]).json()["items"]
    assert listed[0]["architecture"] == [0, 1, 4, 2] * 5


# -- reading ---------------------------------------------------------------------------------


def test_cursor_pagination_walks_every_row_once(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    device = register(client, tokens["ingest"])
    items = [layer_measurement(LAYER_KEYS[i % 3], 1.0 + i / 100) for i in range(25)]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/measurements/layers", params=params, headers=tokens["read"]).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25
    assert pages == 3
    filtered = client.get(
        "/v1/measurements/layers", params={"layer_key": LAYER_KEYS[1]}, headers=tokens["read"]
    ).json()["items"]
    assert len(filtered) == 8


def test_bad_cursor_is_422(client: TestClient, tokens: dict[str, Headers]) -> None:
    response = client.get(
        "/v1/measurements/layers", params={"cursor": "garbage!"}, headers=tokens["read"]
    )
    assert_error(response, 422, "invalid_input", "cursor")


def test_export_csv_and_json(client: TestClient, tokens: dict[str, Headers]) -> None:
    device = register(client, tokens["ingest"])
    items = [layer_measurement(k, samples_ms=[1.0, 1.1]) for k in LAYER_KEYS]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    as_json = client.get(
        "/v1/measurements/layers/export", params={"format": "json"}, headers=tokens["read"]
    )
    assert as_json.headers["content-type"].startswith("application/json")
    assert [row["layer_key"] for row in as_json.json()] == LAYER_KEYS
    as_csv = client.get("/v1/measurements/layers/export", headers=tokens["read"])
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["layer_key"] for row in rows] == LAYER_KEYS
    assert json.loads(rows[0]["samples_ms"]) == [1.0, 1.1]
    assert float(rows[0]["median_ms"]) == 1.0


def test_current_value_is_a_robust_aggregate_with_outliers_flagged(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    device = register(client, tokens["ingest"])
    medians = [1.00, 1.01, 0.99, 1.02, 3.0]  # the last one ran while the phone was hot
    items = [layer_measurement(LAYER_KEYS[0], m) for m in medians]
    ids = client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    ).json()["ids"]
    current = client.get(f"/v1/devices/{device}/layers", headers=tokens["read"]).json()
    assert len(current) == 1
    layer = current[0]
    assert layer["n"] == 5
    assert layer["n_used"] == 4
    assert layer["outlier_ids"] == [ids[-1]]
    assert layer["median_ms"] == pytest.approx(1.005)


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    """Every route of the app: in the schema, described, secured unless public, and every
    request body it takes has examples that the body's own model accepts."""
    from pydantic import BaseModel

    import latency_api.schemas as wire
    from latency_api.schemas import (
        devices,
        jobs,
        measurements,
        plans,
        predictors,
        spaces,
        tokens,
        validations,
    )

    schema = client.get("/openapi.json").json()
    public = {"/healthz", "/metrics"}  # /metrics: open unless HWLAT_METRICS_REQUIRE_TOKEN
    bodies: set[str] = set()
    inline: dict[str, Any] = {}
    operations = 0
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            operations += 1
            where = f"{method.upper()} {path}"
            assert operation.get("description", "").strip(), f"{where} has no description"
            if path not in public:
                assert {"HTTPBearer": []} in operation.get("security", []), where
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = content["application/json"]["schema"]
                if "title" in body and "examples" in body:  # inline (predict parses its body)
                    inline[body["title"]] = body
                    continue
                ref = body.get("$ref") or body["anyOf"][0]["$ref"]
                bodies.add(ref.rsplit("/", 1)[1])
    assert operations >= 25
    models: dict[str, type[BaseModel]] = {
        name: obj
        for module in (devices, jobs, measurements, plans, predictors, spaces, tokens, validations)
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__.startswith(wire.__name__)
    }
    components = {**schema["components"]["schemas"], **inline}
    for name in sorted(bodies | set(inline)):
        examples = components[name].get("examples")
        assert examples, f"request body {name} has no examples"
        for example in examples:
            models[name].model_validate(example)
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_unknown_space_in_a_network_batch_is_422_not_500(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    device = register(client, tokens["ingest"])
    item = network_measurement([0] * 20, space="no-such-space")
    response = client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": [item]},
        headers=tokens["ingest"],
    )
    assert_error(response, 422, "validation_error", "measurements.0", "unknown search space")
