"""Search spaces registered through the service (POST/GET /v1/spaces), on SQLite and PostgreSQL:
stored for good under a name and hash, refused when the name is taken by another spec or the
spec cannot be built (422 naming the field), and used by measurements, fits and predictions."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from latency_api.schemas.predictors import RuntimeTable
from latency_service.measurements.tables import NetworkMeasurement
from models import Op, SearchSpace, get_space
from models.space_spec import spec_from_dict
from models.spaces import BUILTIN
from tests.fixtures.factories import Headers, elastic_spec, layer_measurement, network_measurement


def unique(prefix: str = "lab") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def register(client: TestClient, tokens: dict[str, Headers], spec: dict[str, Any]) -> Any:
    return client.post("/v1/spaces", json=spec, headers=tokens["admin"])


def test_a_spec_is_stored_once_under_its_name_and_hash(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    spec = elastic_spec(unique())
    first = register(client, tokens, spec)
    assert first.status_code == 201, first.text
    body = first.json()
    space = SearchSpace(spec_from_dict(spec))
    assert body["sha256"] == space.digest
    assert (body["decisions"], body["variants"], body["fixed_shape"]) == (
        space.num_layers,
        len(space.variants()),
        False,
    )
    assert body["decision_names"][:3] == ["resolution", "stage0.width", "stage0.depth"]
    again = register(client, tokens, spec)
    assert again.status_code == 200, again.text
    assert again.json()["sha256"] == body["sha256"]
    one = client.get(f"/v1/spaces/{spec['name']}", headers=tokens["read"])
    assert one.status_code == 200
    assert SearchSpace(spec_from_dict(one.json()["spec"])).digest == space.digest
    listed = client.get("/v1/spaces", headers=tokens["read"]).json()["items"]
    names = [item["name"] for item in listed]
    assert names[: len(BUILTIN)] == list(BUILTIN)
    assert spec["name"] in names
    assert [i["builtin"] for i in listed if i["name"] == spec["name"]] == [False]


def test_another_spec_under_a_taken_name_is_refused(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    name = unique()
    assert register(client, tokens, elastic_spec(name)).status_code == 201
    changed = elastic_spec(name, description="other widths")
    changed["stages"][0]["widths"] = [16, 32]
    refused = register(client, tokens, changed)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "conflict"
    assert "register this one under a new name" in refused.json()["detail"]
    builtin = get_space("tiny-64").to_dict() | {"description": "mine now"}
    assert register(client, tokens, builtin).status_code == 409
    same_builtin = register(client, tokens, get_space("tiny-64").to_dict())
    assert same_builtin.status_code == 200
    assert same_builtin.json()["builtin"] is True


def _edit(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target: Any = spec
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        ("stages.0.widths", [], "stages.0.widths", "empty"),
        ("stages.0.candidates", [], "stages.0.candidates", "empty"),
        ("stages.1.candidates.0", "skip", "stages.1.candidates.0", "cannot be skipped"),
        ("stages.0.candidates.1", "k11e6", "stages.0.candidates.1", "kernel 11"),
        ("input.resolutions.1", 1024, "input.resolutions.1", "exporters support"),
        ("stem.0", {"op": "pool"}, "stem.0", "stages after it need a feature map"),
        ("head.1", {"op": "conv", "out": 64, "kernel": 3}, "head.2", "1x1"),
        ("stages.0.stride", 3, "stages.0.stride", "1 or 2"),
        ("schema_version", 2, "schema_version", "not supported"),
    ],
)
def test_a_bad_spec_is_422_naming_the_field(
    client: TestClient,
    tokens: dict[str, Headers],
    path: str,
    value: Any,
    field: str,
    says: str,
) -> None:
    spec = _edit(elastic_spec(unique()), path, value)
    if path == "head.1":  # a 3x3 conv placed after the global pool
        spec["head"] = [
            {"op": "conv", "out": 64, "kernel": 1},
            {"op": "pool"},
            value,
            spec["head"][-1],
        ]
    answer = register(client, tokens, spec)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert field in str(detail), detail
    assert says in str(detail), detail
    assert client.get(f"/v1/spaces/{spec['name']}", headers=tokens["read"]).status_code == 404


def test_a_spec_missing_a_field_is_422_naming_it(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    spec = elastic_spec(unique())
    del spec["stages"]
    answer = register(client, tokens, spec)
    assert answer.status_code == 422
    assert "stages" in answer.text


def test_only_admins_register(client: TestClient, tokens: dict[str, Headers]) -> None:
    answer = client.post("/v1/spaces", json=elastic_spec(unique()), headers=tokens["ingest"])
    assert answer.status_code == 403


def _fitted_elastic_device(
    client: TestClient, tokens: dict[str, Headers], device: int, name: str, leave_out: int
) -> tuple[SearchSpace, dict[str, float], np.ndarray]:
    """A registered elastic space: all but ``leave_out`` of its layer variants measured with
    made-up values, 12 networks measured as the sum of their layers + 0.3 ms, a fit."""
    assert register(client, tokens, elastic_spec(name)).status_code == 201
    space = get_space(name)
    variants = [str(k) for k in space.variants()]
    values = {k: 0.05 * (i + 1) for i, k in enumerate(variants)}
    measured = variants[leave_out:]
    client.post(
        "/v1/measurements/layers",
        json={
            "device_id": device,
            "measurements": [layer_measurement(k, values[k]) for k in measured],
        },
        headers=tokens["ingest"],
    ).raise_for_status()
    archs = space.sample(12, seed=4)
    networks = [
        network_measurement(
            [int(c) for c in a],
            sum(values[str(k)] for k in space.network(a) if k.op is not Op.SKIP) + 0.3,
            space=name,
        )
        for a in archs
    ]
    client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": networks},
        headers=tokens["ingest"],
    ).raise_for_status()
    fit = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"])
    assert fit.status_code == 201, fit.text
    return space, values, archs


def test_an_elastic_space_is_fitted_and_predicted_layer_by_layer(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    name = unique()
    space, values, _ = _fitted_elastic_device(client, tokens, device, name, leave_out=0)
    fresh = space.sample(50, seed=9)
    answer = client.post(
        "/v1/predict",
        json={
            "device_id": device,
            "space": name,
            "architectures": fresh.tolist(),
            "breakdown": True,
        },
        headers=tokens["read"],
    ).json()
    # Every layer measured and networks = sum + 0.3: the calibration recovers it exactly.
    expected = [
        sum(values[str(k)] for k in space.network(a) if k.op is not Op.SKIP) + 0.3 for a in fresh
    ]
    assert np.allclose(answer["latency_ms"], expected, rtol=1e-6)
    assert answer["estimated_count"] == [0] * 50
    assert answer["estimated_layers"] == []
    # The same networks given as their layer lists: the same sums.
    by_layers = client.post(
        "/v1/predict",
        json={
            "device_id": device,
            "space": name,
            "layers": [[str(k) for k in space.network(a)] for a in fresh],
        },
        headers=tokens["read"],
    ).json()
    assert np.allclose(by_layers["latency_ms"], expected, rtol=1e-6)


def test_layers_never_measured_are_estimated_and_flagged_per_architecture(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    name = unique()
    space, _, _ = _fitted_elastic_device(client, tokens, device, name, leave_out=6)
    never = {str(k) for k in space.variants()[:6]}
    fresh = space.sample(40, seed=11)
    answer = client.post(
        "/v1/predict",
        json={"device_id": device, "space": name, "architectures": fresh.tolist()},
        headers=tokens["read"],
    ).json()
    counts = [sum(str(k) in never for k in space.network(a)) for a in fresh]
    assert answer["estimated_count"] == counts
    assert any(counts)
    assert {e["layer_key"] for e in answer["estimated_layers"]} <= never
    assert {e["layer_key"] for e in answer["estimated_layers"]} == {
        str(k) for a in fresh for k in space.network(a) if str(k) in never
    }


def test_networks_of_another_spec_under_the_same_name_are_left_out_of_a_fit(
    client: TestClient, tokens: dict[str, Headers], device: int, session: Session
) -> None:
    name = unique()
    _fitted_elastic_device(client, tokens, device, name, leave_out=0)
    stored = client.get(f"/v1/measurements/networks?device_id={device}", headers=tokens["read"])
    assert {m["space_sha256"] for m in stored.json()["items"]} == {get_space(name).digest}
    # As if a release had changed the spec these networks were measured under.
    session.execute(
        update(NetworkMeasurement)
        .where(NetworkMeasurement.id.in_([m["id"] for m in stored.json()["items"][:5]]))
        .values(space_sha256="0" * 64)
    )
    refit = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"])
    assert refit.status_code == 201
    kept = {tuple(m["architecture"]) for m in stored.json()["items"][5:]}
    assert refit.json()["metrics"]["n_networks"] == len(kept)


def test_an_elastic_runtime_table_gives_what_predict_gives(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    name = unique()
    space, _, _ = _fitted_elastic_device(client, tokens, device, name, leave_out=3)
    answer = client.get(
        f"/v1/devices/{device}/runtime-table", params={"space": name}, headers=tokens["read"]
    )
    assert answer.status_code == 200, answer.text
    table = RuntimeTable.model_validate(answer.json())
    assert {layer.name for layer in table.layers} >= {"stage0.layer0", "head0"}
    assert sum(c.estimated for layer in table.layers for c in layer.candidates) > 0
    archs = space.sample(30, seed=5)
    predicted = client.post(
        "/v1/predict",
        json={"device_id": device, "space": name, "architectures": archs.tolist()},
        headers=tokens["read"],
    ).json()["latency_ms"]
    assert np.allclose([table.latency_ms(list(a)) for a in archs], predicted, rtol=1e-9)
    seed_layout = client.get(
        f"/v1/devices/{device}/runtime-table",
        params={"space": name, "format": "spnas"},
        headers=tokens["read"],
    )
    assert seed_layout.status_code == 422
    assert "elastic" in seed_layout.json()["detail"]


def test_an_elastic_space_is_validated_against_its_held_out_networks(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    name = unique()
    space, values, archs = _fitted_elastic_device(client, tokens, device, name, leave_out=0)
    # Networks measured after the fit, never calibrated on: 5% slower than the layer sum says.
    fresh = [[int(c) for c in a] for a in space.sample(20, seed=31)]
    seen = {tuple(int(c) for c in a) for a in archs}
    fresh = [list(a) for a in dict.fromkeys(tuple(a) for a in fresh) if a not in seen]
    networks = [
        network_measurement(
            a,
            1.05 * (sum(values[str(k)] for k in space.network(a) if k.op is not Op.SKIP) + 0.3),
            space=name,
        )
        for a in fresh
    ]
    client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": networks},
        headers=tokens["ingest"],
    ).raise_for_status()
    report = client.post(
        f"/v1/devices/{device}/validations",
        json={"space": name, "architectures": fresh},
        headers=tokens["admin"],
    )
    assert report.status_code == 201, report.text
    body = report.json()
    assert body["space_sha256"] == space.digest
    assert body["metrics"]["n"] == len(fresh)
    assert body["metrics"]["mape"] == pytest.approx(100 * 0.05 / 1.05, rel=1e-3)
    assert set(body["baselines"]) == {"macs_proportional", "table_sum", "per_op_forest"}


def test_a_validation_whose_sample_missed_a_kind_of_layer_leaves_the_forest_out(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    name = unique()
    # The head's pool is the only pool variant per resolution: leave both out of the sample.
    assert register(client, tokens, elastic_spec(name)).status_code == 201
    space = get_space(name)
    pools = {str(k) for k in space.variants() if k.op is Op.POOL}
    items = [
        layer_measurement(str(k), 0.01 + 1e-7 * k.macs)
        for k in space.variants()
        if str(k) not in pools
    ]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    ).raise_for_status()
    archs = [list(a) for a in dict.fromkeys(tuple(int(c) for c in a) for a in space.sample(16, 3))]
    networks = [network_measurement(a, 1.0 + 0.01 * i, space=name) for i, a in enumerate(archs)]
    client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": networks},
        headers=tokens["ingest"],
    ).raise_for_status()
    held = archs[:6]
    fit = client.post(
        f"/v1/devices/{device}/predictors", json={"holdout": {name: held}}, headers=tokens["admin"]
    )
    assert fit.status_code == 201, fit.text
    report = client.post(
        f"/v1/devices/{device}/validations",
        json={"space": name, "architectures": held},
        headers=tokens["admin"],
    )
    assert report.status_code == 201, report.text
    assert set(report.json()["baselines"]) == {"macs_proportional", "table_sum"}
