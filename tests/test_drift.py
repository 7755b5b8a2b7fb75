"""Slow drift seen by the reference model around each job, and the correction used only where
it helps (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from models import get_space
from tests.fixtures.factories import (
    HAND,
    Headers,
    hand_sum,
    layer_measurement,
    network_measurement,
)

TINY = get_space("tiny-64")
REFERENCE = "mbconv_hw28_i32_o32_k3_e6_s1"


def run_job(
    client: TestClient,
    tokens: dict[str, Headers],
    device: int,
    archs: list[list[int]],
    slow: float,
    reference_ms: tuple[float, float],
) -> int:
    """A network job as an agent runs it, on a machine running ``slow`` times slower."""
    payload = {"kind": "profile_networks", "space": "tiny-64", "architectures": archs}
    job = client.post(
        "/v1/jobs", json={"device_id": device, "payload": payload}, headers=tokens["admin"]
    ).json()
    lease = client.post(
        "/v1/jobs/claim", json={"device_id": device, "agent": "a"}, headers=tokens["ingest"]
    ).json()
    ref = {"id": lease["id"], "lease_token": lease["lease_token"]}

    def upload(kind: str, items: list[dict[str, Any]]) -> None:
        response = client.post(
            f"/v1/measurements/{kind}",
            json={"device_id": device, "measurements": items, "job": ref},
            headers=tokens["ingest"],
        )
        assert response.status_code == 201, response.text

    upload(
        "networks",
        [network_measurement(a, slow * (1.1 * hand_sum(a) + 0.5), space="tiny-64") for a in archs],
    )
    upload("layers", [layer_measurement(REFERENCE, ms, role="reference") for ms in reference_ms])
    return int(job["id"])


def test_drift_is_reported_and_corrected_only_where_it_helps(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    items = [layer_measurement(k, ms) for k, ms in HAND.items()]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    ).raise_for_status()
    archs = [[int(i) for i in a] for a in TINY.sample(60, seed=11)]
    archs = list({tuple(a): a for a in archs}.values())
    # Three jobs; the machine ran 12% slow through the second (and its reference saw it).
    jobs = [
        run_job(client, tokens, device, archs[0:10], 1.0, (2.00, 2.01)),
        run_job(client, tokens, device, archs[10:20], 1.12, (2.24, 2.25)),
        run_job(client, tokens, device, archs[20:30], 1.0, (2.01, 2.00)),
    ]
    drift = client.get(f"/v1/devices/{device}/drift", headers=tokens["read"]).json()
    assert [j["job_id"] for j in drift["jobs"]] == jobs
    assert drift["spread_pct"] == pytest.approx(100 * (2.245 / 2.005 - 1), rel=1e-3)
    assert drift["drifting"] is True
    # The layer's own values never include the references.
    current = client.get(f"/v1/devices/{device}/layers", headers=tokens["read"]).json()
    assert REFERENCE not in {c["layer_key"] for c in current}

    fit = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"]).json()
    decision = fit["metrics"]["drift_correction"]
    assert decision["applied"] is True
    assert decision["loo_mape_pct_corrected"] < decision["loo_mape_pct_raw"]

    run_job(client, tokens, device, archs[30:45], 1.12, (2.25, 2.24))
    report = client.post(
        f"/v1/devices/{device}/validations",
        json={"space": "tiny-64", "architectures": archs[30:45]},
        headers=tokens["admin"],
    ).json()
    comparison = report["details"]["drift_correction"]
    assert comparison["applied"] is True
    assert comparison["helps"] is True
    assert comparison["corrected"]["mape"] < comparison["raw"]["mape"]
    assert report["metrics"]["mape"] == pytest.approx(comparison["corrected"]["mape"])


def test_a_steady_device_is_not_corrected(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    items = [layer_measurement(k, ms) for k, ms in HAND.items()]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    ).raise_for_status()
    archs = [[int(i) for i in a] for a in TINY.sample(40, seed=12)]
    archs = list({tuple(a): a for a in archs}.values())
    run_job(client, tokens, device, archs[0:10], 1.0, (2.00, 2.01))
    run_job(client, tokens, device, archs[10:20], 1.0, (2.02, 2.01))
    drift = client.get(f"/v1/devices/{device}/drift", headers=tokens["read"]).json()
    assert drift["drifting"] is False
    fit = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"]).json()
    assert fit["metrics"]["drift_correction"]["applied"] is False


def test_a_device_id_beyond_the_store_is_refused_saying_so(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    response = client.get("/v1/devices/99999999999/drift", headers=tokens["read"])
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert "device_id" in response.json()["detail"]
