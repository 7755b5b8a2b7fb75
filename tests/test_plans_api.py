"""Active sampling over HTTP: plans, the jobs they queue, and the fit each job triggers."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from models import get_space
from tests.fixtures.factories import HOST_DEVICE, Headers, layer_measurement
from tests.test_layer_model import WEIGHTS, device_truth

SEED = get_space("spnas-mobilenetv2-224")
SEED_LAYERS = list(dict.fromkeys([*SEED.prefix, *SEED.variants(), *SEED.suffix]))


def register(client: TestClient, tokens: dict[str, Headers], name: str, threads: int) -> int:
    body = {**HOST_DEVICE, "name": name, "threads": threads}
    response = client.post("/v1/devices", json=body, headers=tokens["ingest"])
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


def plan(
    client: TestClient, tokens: dict[str, Headers], device: int, **body: Any
) -> dict[str, Any]:
    response = client.post(
        f"/v1/devices/{device}/plans",
        json={"space": SEED.name, **body},
        headers=tokens["admin"],
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def work_job(
    client: TestClient, tokens: dict[str, Headers], device: int, truth: dict[str, float]
) -> dict[str, Any]:
    """What an agent does: claim, upload the job's layers as measured, complete."""
    claimed = client.post(
        "/v1/jobs/claim",
        json={"device_id": device, "agent": "test-agent", "lease_seconds": 60},
        headers=tokens["ingest"],
    )
    assert claimed.status_code == 200, claimed.text
    job = claimed.json()
    keys = job["payload"]["layer_keys"]
    lease = {"id": job["id"], "lease_token": job["lease_token"]}
    stored = client.post(
        "/v1/measurements/layers",
        json={
            "device_id": device,
            "measurements": [layer_measurement(k, truth[k]) for k in keys],
            "job": lease,
        },
        headers=tokens["ingest"],
    )
    assert stored.status_code == 201, stored.text
    done = client.post(
        f"/v1/jobs/{job['id']}/complete",
        json={
            "lease_token": job["lease_token"],
            "result": {"kind": "layers", "stored": len(keys), "ids": stored.json()["ids"]},
        },
        headers=tokens["ingest"],
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


def test_a_new_device_is_planned_from_the_known_one_and_fitted_when_its_job_completes(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    known = register(client, tokens, "known", threads=1)
    known_truth = device_truth(SEED_LAYERS, WEIGHTS, wiggle=0.1, seed=1)
    response = client.post(
        "/v1/measurements/layers",
        json={
            "device_id": known,
            "measurements": [layer_measurement(k, v) for k, v in known_truth.items()],
        },
        headers=tokens["ingest"],
    )
    assert response.status_code == 201, response.text
    new = register(client, tokens, "new", threads=2)
    new_truth = {k: 0.6 * v for k, v in known_truth.items()}

    first = plan(client, tokens, new, layers=6, networks=4)
    assert first["basis"] == "other_devices"
    assert first["measured_layers"] == 0
    assert first["estimated_layer_share_pct"] == 100
    assert len({layer["layer_key"] for layer in first["layers"]}) == 6
    assert len(first["architectures"]) == 4
    assert len(first["job_ids"]) == 2
    job = client.get(f"/v1/jobs/{first['job_ids'][0]}", headers=tokens["read"]).json()
    assert job["fit_after"] is True
    assert job["payload"]["layer_keys"] == [layer["layer_key"] for layer in first["layers"]]

    work_job(client, tokens, new, new_truth)
    versions = client.get(f"/v1/devices/{new}/predictors", headers=tokens["read"]).json()
    assert len(versions["items"]) == 1, "the completed job fitted a version, nobody asked"
    model = versions["items"][0]["metrics"]["layer_model"]
    assert model["n_train"] == 6
    assert [s["device"] for s in model["similar_devices"]] == [f"#{known} known"]
    assert model["similar_devices"][0]["speed_ratio"] > 0.55
    # The device's page shows which known devices helped, and how much.
    shown = client.get(
        f"/dashboard/data/devices/{new}/similar-devices", headers=tokens["read"]
    ).json()
    assert [(row["device"], row["weight"]) for row in shown] == [(f"#{known} known", 1.0)]
    page = client.get(f"/dashboard/devices/{new}", headers=tokens["read"])
    assert page.status_code == 200
    assert "similar-devices" in page.text
    # Every unmeasured layer is estimated leaning on the known device: about 0.6x its sum.
    archs = [[int(c) for c in a] for a in SEED.sample(20, 5)]
    predicted = client.post(
        "/v1/predict",
        json={"device_id": new, "space": SEED.name, "architectures": archs},
        headers=tokens["read"],
    )
    assert predicted.status_code == 200, predicted.text
    answer = predicted.json()
    assert min(answer["estimated_count"]) > 0
    for arch, ms in zip(archs, answer["latency_ms"], strict=True):
        truth = sum(new_truth[str(k)] for k in SEED.network(arch) if k.op.value != "skip")
        assert abs(ms - truth) / truth < 0.1

    second = plan(client, tokens, new, layers=5, create_jobs=False)
    assert second["basis"] == "device"
    assert second["measured_layers"] == 6
    assert second["job_ids"] == []
    assert not {layer["layer_key"] for layer in second["layers"]} & {
        layer["layer_key"] for layer in first["layers"]
    }
    assert second["expected_mape_pct"] is not None
    assert second["expected_mape_pct"] >= 0


def test_a_device_with_nothing_known_anywhere_gets_an_uninformed_plan(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    answer = plan(client, tokens, device, layers=8, create_jobs=False)
    assert answer["basis"] == "uninformed"
    assert answer["expected_mape_pct"] is None
    assert len(answer["layers"]) == 8
    assert answer["job_ids"] == []


def test_a_plan_names_an_unknown_space_and_an_unknown_device(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    response = client.post(
        f"/v1/devices/{device}/plans", json={"space": "nope"}, headers=tokens["admin"]
    )
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]
    response = client.post(
        "/v1/devices/999999/plans", json={"space": SEED.name}, headers=tokens["admin"]
    )
    assert response.status_code == 404
    response = client.post(
        f"/v1/devices/{device}/plans", json={"space": SEED.name}, headers=tokens["read"]
    )
    assert response.status_code == 403


def test_too_few_layers_here_and_on_the_known_device_plan_uninformed_and_fit_a_table(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    """Three layers on each device: no layer model can be fitted (a device alone needs 8, and
    a prior needs a known device with 8). The plan falls back to the uninformed choice and the
    fit to the measured table, instead of failing."""
    truth = device_truth(SEED_LAYERS, WEIGHTS, wiggle=0.0, seed=3)
    three = dict(list(truth.items())[:3])
    known, new = register(client, tokens, "few-a", 1), register(client, tokens, "few-b", 2)
    for device in (known, new):
        response = client.post(
            "/v1/measurements/layers",
            json={
                "device_id": device,
                "measurements": [layer_measurement(k, v) for k, v in three.items()],
            },
            headers=tokens["ingest"],
        )
        assert response.status_code == 201, response.text
    answer = plan(client, tokens, new, layers=4, create_jobs=False)
    assert answer["basis"] == "uninformed"
    assert len(answer["layers"]) == 4
    fitted = client.post(f"/v1/devices/{new}/predictors", headers=tokens["admin"])
    assert fitted.status_code == 201, fitted.text
    assert fitted.json()["metrics"]["n_layers"] == 3
    assert "layer_model" not in fitted.json()["metrics"]
