"""Peak memory and energy beside latency: stored, fitted, predicted (issue 21).

The pure models first (their aggregation over layers is the point: energy sums, peak memory
does not), then the service over HTTP on SQLite and PostgreSQL, then the host agent measuring
them through a real job.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from device_agents.metrics import MetricReadings
from latency_api.schemas.measurements import METHOD_CHARS, LayerMeasurementIn
from models import get_space, parse
from models.units import BYTES_PER_MB
from predictor.artifact import PredictorArtifact, live_bytes, weight_bytes
from predictor.memory_energy import (
    arithmetic_memory_bytes,
    fit_energy,
    fit_memory,
    predict_energy_mj,
    predict_memory_mb,
)
from tests.fixtures.factories import Headers, layer_measurement, network_measurement

TINY = get_space("tiny-64")
VARIANTS = [k for k in TINY.variants()]
# A device whose peak is 3 MB of runtime, its weights twice (a packed copy beside the file)
# and its live set once, exactly: what fit_memory should read back.
FIXED, PER_WEIGHT, PER_LIVE = 3e6, 2.0, 1.0


def true_peak(keys: Any) -> float:
    return FIXED + PER_WEIGHT * weight_bytes(keys).sum() + PER_LIVE * live_bytes(keys).max()


def true_energy_mj(key: Any) -> float:
    return 1e-8 * key.macs + 1e-9 * key.activation_bytes


def test_peak_memory_is_weights_plus_the_largest_live_set_not_a_sum_of_layers() -> None:
    layers = {str(k): true_peak([k]) for k in VARIANTS}
    model = fit_memory(layers, {})
    assert model is not None
    assert model.fixed_bytes == pytest.approx(FIXED, rel=1e-6)
    assert model.per_weight_byte == pytest.approx(PER_WEIGHT, rel=1e-6)
    assert model.per_live_byte == pytest.approx(PER_LIVE, rel=1e-6)
    assert model.fit_mape_pct < 1e-6
    networks = [TINY.network(a) for a in TINY.sample(10, seed=0)]
    predicted = model.formula_bytes(networks)
    assert predicted == pytest.approx([true_peak(n) for n in networks], rel=1e-9)
    # Summing the layers' peaks would count the runtime and the activations once per layer.
    summed = [sum(layers[str(k)] for k in n if str(k) in layers) for n in networks]
    assert all(s > 1.5 * p for s, p in zip(summed, predicted, strict=True))


def test_the_memory_calibration_maps_the_formula_to_measured_networks() -> None:
    layers = {str(k): true_peak([k]) for k in VARIANTS}
    archs = [tuple(int(c) for c in a) for a in TINY.sample(12, seed=1)]
    # The networks' runtime holds 1 MB more than a layer's alone, and 5% on top.
    measured = [(a, 1.05 * true_peak(TINY.network(a)) + 1e6) for a in archs]
    model = fit_memory(layers, {TINY: measured})
    assert model is not None
    calibration = model.calibration[TINY.name]
    assert calibration.space_sha256 == TINY.digest
    assert not calibration.rejected
    artifact = PredictorArtifact(memory=model)
    mb = predict_memory_mb(artifact, TINY, [TINY.network(a) for a in archs])
    assert mb * BYTES_PER_MB == pytest.approx([v for _, v in measured], rel=1e-6)


def test_energy_sums_over_layers_and_the_regression_covers_unmeasured_ones() -> None:
    layers = {str(k): true_energy_mj(k) for k in VARIANTS}
    held = str(VARIANTS[5])
    model = fit_energy({k: v for k, v in layers.items() if k != held}, {})
    assert model is not None
    assert model.regression is not None
    # Linear in its features: the fit finds it, but a fold that holds the space's only conv
    # or head layer has nothing to learn that layer's kind from.
    assert model.regression.cv_mape_pct < 5.0
    network = TINY.network([1, 2, 3, 0])
    (total,) = model.network_mj([network])
    expected = sum(0.0 if k.op.value == "skip" else true_energy_mj(k) for k in network)
    assert total == pytest.approx(expected, rel=0.01)
    assert model.layer_mj([parse(held)])[0] == pytest.approx(layers[held], rel=0.02)


def test_a_model_of_each_metric_survives_json_and_old_artifacts_read_without_them() -> None:
    memory = fit_memory({str(k): true_peak([k]) for k in VARIANTS}, {})
    energy = fit_energy({str(k): true_energy_mj(k) for k in VARIANTS}, {})
    artifact = PredictorArtifact(memory=memory, energy=energy)
    again = PredictorArtifact.from_json(artifact.to_json())
    assert again.memory == memory
    assert again.energy == energy
    old = artifact.to_dict()
    old["schema_version"] = 2
    del old["memory"], old["energy"]
    read = PredictorArtifact.from_dict(old)
    assert read.memory is None
    assert read.energy is None


def test_the_arithmetic_baseline_is_weights_plus_the_largest_layer_activations() -> None:
    network = TINY.network([1, 2, 3, 0])
    (value,) = arithmetic_memory_bytes([network])
    assert value == weight_bytes(network).sum() + live_bytes(network).max()


def upload(client: TestClient, tokens: dict[str, Headers], kind: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1/measurements/{kind}", json=body, headers=tokens["ingest"])
    assert response.status_code == 201, response.text


def test_the_service_stores_fits_and_predicts_both_metrics(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    layers = [
        layer_measurement(
            str(k),
            1.0 + i,
            peak_memory_bytes=int(true_peak([k])),
            memory_method="test: exact",
            energy_mj=true_energy_mj(k),
            energy_method="test: exact",
            energy_detail={"rails": ["CPU"], "charging": False},
        )
        for i, k in enumerate(VARIANTS)
    ]
    # A repeat without metrics (the timed passes' other rows) leaves them as they are.
    layers.append(layer_measurement(str(VARIANTS[0]), 1.0))
    upload(client, tokens, "layers", {"device_id": device, "measurements": layers})
    archs = [[int(c) for c in a] for a in TINY.sample(6, seed=2)]
    networks = [
        network_measurement(
            a,
            float(sum(a) + 5),
            space=TINY.name,
            peak_memory_bytes=int(true_peak(TINY.network(a)) + 1e6),
            energy_mj=1.1 * sum(true_energy_mj(k) for k in TINY.network(a) if k.op.value != "skip"),
        )
        for a in archs
    ]
    upload(client, tokens, "networks", {"device_id": device, "measurements": networks})
    stored = client.get(
        "/v1/measurements/layers", params={"device_id": device}, headers=tokens["read"]
    ).json()["items"]
    assert sum(r["peak_memory_bytes"] is not None for r in stored) == len(VARIANTS)
    assert stored[0]["energy_detail"] == {"rails": ["CPU"], "charging": False}
    fitted = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"])
    assert fitted.status_code == 201, fitted.text
    answer = client.post(
        "/v1/predict",
        json={
            "device_id": device,
            "space": TINY.name,
            "architectures": archs,
            "metrics": ["memory", "energy"],
        },
        headers=tokens["read"],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    artifact = PredictorArtifact.from_dict(
        client.get(f"/v1/devices/{device}/predictors/1", headers=tokens["read"]).json()["artifact"]
    )
    nets = [TINY.network(a) for a in archs]
    assert body["peak_memory_mb"] == pytest.approx(predict_memory_mb(artifact, TINY, nets).tolist())
    assert body["energy_mj"] == pytest.approx(predict_energy_mj(artifact, TINY, nets).tolist())
    # Calibrated on these very networks, exactly representable: the answers are the measured.
    assert np.asarray(body["peak_memory_mb"]) * BYTES_PER_MB == pytest.approx(
        [n["peak_memory_bytes"] for n in networks], rel=1e-3
    )
    assert body["energy_mj"] == pytest.approx([n["energy_mj"] for n in networks], rel=0.02)
    plain = client.post(
        "/v1/predict",
        json={"device_id": device, "space": TINY.name, "architectures": archs},
        headers=tokens["read"],
    ).json()
    assert plain["peak_memory_mb"] is None
    assert plain["energy_mj"] is None


def test_a_metric_never_measured_is_a_409_that_says_how_to_measure_it(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    layers = [layer_measurement(str(k), 1.0 + i) for i, k in enumerate(VARIANTS)]
    upload(client, tokens, "layers", {"device_id": device, "measurements": layers})
    assert client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"]).is_success
    answer = client.post(
        "/v1/predict",
        json={
            "device_id": device,
            "space": TINY.name,
            "architectures": [[0, 0, 0, 0]],
            "metrics": ["energy"],
        },
        headers=tokens["read"],
    )
    assert answer.status_code == 409
    assert answer.json()["error"] == "predictor_incomplete"
    assert "--metric energy" in answer.json()["detail"]


def test_metrics_over_layer_lists_are_refused_with_the_form_that_works(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    answer = client.post(
        "/v1/predict",
        json={"device_id": device, "layers": [[str(VARIANTS[0])]], "metrics": ["memory"]},
        headers=tokens["read"],
    )
    assert answer.status_code == 422
    assert "architectures" in answer.text


def test_a_version_s_memory_and_energy_are_validated_against_their_baselines(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    layers = [
        layer_measurement(
            str(k), 1.0 + i, peak_memory_bytes=int(true_peak([k])), energy_mj=true_energy_mj(k)
        )
        for i, k in enumerate(VARIANTS)
    ]
    upload(client, tokens, "layers", {"device_id": device, "measurements": layers})
    archs = [[int(c) for c in a] for a in TINY.sample(12, seed=5)]

    def network(arch: list[int], energy_scale: float) -> dict[str, Any]:
        keys = TINY.network(arch)
        return network_measurement(
            arch,
            float(sum(arch) + 5),
            space=TINY.name,
            peak_memory_bytes=int(true_peak(keys) + 1e6),
            energy_mj=energy_scale * sum(true_energy_mj(k) for k in keys if k.op.value != "skip"),
        )

    calibration, held = archs[:6], archs[6:]
    items = [network(a, 1.1) for a in calibration] + [network(a, 1.1) for a in held]
    # One held-out network measured twice, a little apart: the noise floor has a pair.
    items.append(network(held[0], 1.12))
    upload(client, tokens, "networks", {"device_id": device, "measurements": items})
    fitted = client.post(
        f"/v1/devices/{device}/predictors",
        json={"holdout": {TINY.name: held}},
        headers=tokens["admin"],
    )
    assert fitted.status_code == 201, fitted.text
    reports = {}
    for metric in ("memory", "energy"):
        answer = client.post(
            f"/v1/devices/{device}/validations/metrics",
            json={"space": TINY.name, "metric": metric},
            headers=tokens["read"],
        )
        assert answer.status_code == 200, answer.text
        reports[metric] = answer.json()
    memory, energy = reports["memory"], reports["energy"]
    # The held-out networks only: the version's calibration networks are left out.
    assert sorted(p["architecture"] for p in memory["points"]) == sorted(held)
    assert memory["unit"] == "MB"
    assert memory["metrics"]["mape"] < 0.01  # the networks follow the model exactly
    assert "rmse" in memory["metrics"]
    assert "rmse_ms" not in memory["metrics"]
    assert memory["baselines"]["arithmetic"]["mape"] > 10 * memory["metrics"]["mape"]
    assert energy["unit"] == "mJ"
    assert energy["metrics"]["mape"] < 2.0
    assert set(energy["baselines"]) == {"macs_proportional"}
    assert energy["noise_floor"]["networks"] == 1
    (twice,) = [p for p in energy["points"] if p["n_measurements"] == 2]
    assert twice["architecture"] == held[0]
    calibrated = client.post(
        f"/v1/devices/{device}/validations/metrics",
        json={"space": TINY.name, "metric": "memory", "architectures": [calibration[0]]},
        headers=tokens["read"],
    )
    assert calibrated.status_code == 422
    assert "calibration networks" in calibrated.json()["detail"]


def test_a_long_method_is_cut_to_the_store_s_length_and_the_row_still_validates() -> None:
    why = "unavailable: " + "a reason that runs long " * 30
    readings = MetricReadings(memory_method=why, energy_method=why)
    fields = readings.as_measurement()
    assert fields == {"memory_method": why[:METHOD_CHARS], "energy_method": why[:METHOD_CHARS]}
    row = layer_measurement(str(VARIANTS[0]), 1.0, **fields)
    assert LayerMeasurementIn.model_validate(row).memory_method == why[:METHOD_CHARS]
