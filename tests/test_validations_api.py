"""Validation computed by the service from stored measurements, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from models import get_space
from predictor.accuracy import accuracy
from tests.fixtures.factories import (
    HAND,
    Headers,
    hand_sum,
    layer_measurement,
    network_measurement,
)

TINY = get_space("tiny-64")


def measured_ms(arch: list[int]) -> float:
    """What the 'device' measures: the table's sum, scaled, with a per-network wobble."""
    wobble = 1 + 0.04 * np.sin(sum((i + 1) * c for i, c in enumerate(arch)))
    return float(1.1 * hand_sum(arch) * wobble + 0.5)


def store_networks(
    client: TestClient, tokens: dict[str, Headers], device: int, archs: list[list[int]]
) -> None:
    items = [network_measurement(a, measured_ms(a), space="tiny-64") for a in archs]
    response = client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    assert response.status_code == 201, response.text


def fitted_device(
    client: TestClient, tokens: dict[str, Headers], device: int, without: str | None = None
) -> list[list[int]]:
    """Layers (all but ``without``), 8 calibration networks, a fit; the calibration
    architectures."""
    items = [layer_measurement(k, ms) for k, ms in HAND.items() if k != without]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    ).raise_for_status()
    calibration = [[int(i) for i in a] for a in TINY.sample(8, seed=1)]
    store_networks(client, tokens, device, calibration)
    fit = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"])
    assert fit.status_code == 201, fit.text
    return calibration


def validate(client: TestClient, tokens: dict[str, Headers], device: int, **body: Any) -> Any:
    return client.post(
        f"/v1/devices/{device}/validations",
        json={"space": "tiny-64", **body},
        headers=tokens["admin"],
    )


def test_the_service_scores_a_version_on_networks_it_was_not_calibrated_on(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    calibration = fitted_device(client, tokens, device)
    fresh = [
        [int(i) for i in a]
        for a in TINY.sample(40, seed=2)
        if [int(i) for i in a] not in calibration
    ]
    fresh = list({tuple(a): a for a in fresh}.values())
    store_networks(client, tokens, device, fresh)
    response = validate(client, tokens, device)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["predictor_version"] == 1
    assert report["n"] == len(fresh) == len(report["points"])
    assert {tuple(p["architecture"]) for p in report["points"]} == {tuple(a) for a in fresh}
    # The figures are the service's own: recompute them from its points.
    points = report["points"]
    expected = accuracy([p["predicted_ms"] for p in points], [p["measured_ms"] for p in points])
    assert report["metrics"] == pytest.approx(expected)
    for point in points:
        assert point["measured_ms"] == pytest.approx(measured_ms(point["architecture"]))
    assert report["details"]["calibration_networks"] == len(calibration)
    # The calibration (a, b fitted on 8 wobbly networks) beats the plain sum of layers.
    assert set(report["baselines"]) == {"macs_proportional", "table_sum", "per_op_forest"}
    assert report["metrics"]["mape"] < report["baselines"]["table_sum"]["mape"]
    listed = client.get(f"/v1/devices/{device}/validations", headers=tokens["read"]).json()
    assert [v["id"] for v in listed["items"]] == [report["id"]]
    assert listed["items"][0]["predictor_id"] == report["predictor_id"]


def test_a_layer_never_measured_leaves_the_baselines_in_place(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    # Every window of one layer was rejected: the version estimates it, and so does the plain
    # table sum it is compared with; the report still has all three baselines.
    unmeasured = str(TINY.layers[0].key(0))  # a searchable candidate
    calibration = fitted_device(client, tokens, device, without=unmeasured)
    fresh = [[int(i) for i in a] for a in TINY.sample(30, seed=3) if list(a) not in calibration]
    store_networks(client, tokens, device, list({tuple(a): a for a in fresh}.values()))
    response = validate(client, tokens, device)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["details"]["estimated_layers"] == 1
    assert set(report["baselines"]) == {"macs_proportional", "table_sum", "per_op_forest"}
    assert all(np.isfinite(m["mape"]) for m in report["baselines"].values())


def test_named_networks_are_validated_and_bad_names_are_refused(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    calibration = fitted_device(client, tokens, device)
    fresh = [[0, 0, 0, 0], [3, 4, 2, 4], [1, 2, 3, 0]]
    store_networks(client, tokens, device, fresh)
    ok = validate(client, tokens, device, architectures=fresh[:2], details={"why": "test"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["n"] == 2
    assert ok.json()["details"]["why"] == "test"
    unmeasured = validate(client, tokens, device, architectures=[[2, 2, 2, 2], *fresh[:1]])
    assert unmeasured.status_code == 422
    assert "has no stored measurement" in unmeasured.json()["detail"]
    seen = validate(client, tokens, device, architectures=[calibration[0], *fresh[:2]])
    assert seen.status_code == 422
    assert "calibration networks" in seen.json()["detail"]
    bad = validate(client, tokens, device, architectures=[[0, 0, 9, 0]])
    assert bad.status_code == 422
    assert "position 2" in bad.json()["detail"]


def test_validation_errors_say_what_is_missing(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    no_predictor = validate(client, tokens, device)
    assert no_predictor.status_code == 409
    assert no_predictor.json()["error"] == "no_predictor"
    fitted_device(client, tokens, device)
    too_few = validate(client, tokens, device)
    assert too_few.status_code == 422
    assert "at least 2" in too_few.json()["detail"]
    assert validate(client, tokens, device, predictor_version=5).status_code == 404
    assert validate(client, tokens, 999).status_code == 404
    reader = client.post(
        f"/v1/devices/{device}/validations", json={"space": "tiny-64"}, headers=tokens["read"]
    )
    assert reader.status_code == 403


def test_the_noise_floor_comes_from_the_passes_and_rejected_attempts_count_for_nothing(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    fitted_device(client, tokens, device)
    fresh = [[0, 0, 0, 0], [3, 4, 2, 4], [1, 2, 3, 0], [2, 2, 2, 2]]
    # Two passes each; the last network's passes disagree by 8%.
    second_pass = [1.02, 0.98, 1.01, 1.08]
    items = [network_measurement(a, measured_ms(a), space="tiny-64") for a in fresh]
    items += [
        network_measurement(a, measured_ms(a) * f, space="tiny-64")
        for a, f in zip(fresh, second_pass, strict=True)
    ]
    # A burst the agent's gate rejected: stored as evidence, used by nothing.
    items.append(
        network_measurement(
            fresh[0],
            measured_ms(fresh[0]) * 1.5,
            space="tiny-64",
            accepted=False,
            rejection="speed probe 1.50x its baseline",
        )
    )
    response = client.post(
        "/v1/measurements/networks",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    assert response.status_code == 201, response.text
    report = validate(client, tokens, device, architectures=fresh).json()
    for point, factor in zip(report["points"], second_pass, strict=True):
        first = measured_ms(point["architecture"])
        assert point["passes_ms"] == pytest.approx([first, first * factor])
        assert point["measured_ms"] == pytest.approx(first * (1 + factor) / 2)
    # Each pass against the other: three networks agree within 5%, the fourth does not.
    floor = report["noise_floor"]
    assert (floor["networks"], floor["comparisons"]) == (4, 8)
    within = [abs(f - 1) <= 0.05 for f in second_pass] + [
        abs(1 / f - 1) <= 0.05 for f in second_pass
    ]
    assert floor["within_5pct"] == pytest.approx(sum(within) / 8)
    assert floor["within_10pct"] == 1.0
