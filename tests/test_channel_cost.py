"""The channel cost: the device's latency as a smooth function of channel counts (FiGS).

Served by the real service, evaluated by the torch module, and held to ``POST /v1/predict`` at
every architecture it is asked about; its gradient checked against finite differences.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from models.features import FEATURES, feature_matrix
from nas.channel_cost import ChannelCostModule, hat_weights
from predictor.artifact import LayerEntry, PredictorArtifact
from predictor.channel_cost import MAC_FEATURES, ChannelCost, NoLayerModel, flop_cost
from predictor.channel_export import channel_cost
from predictor.compiled import compile_space
from predictor.fitting import fit_predictor
from tests.fixtures.factories import (
    Headers,
    layer_measurement,
    network_measurement,
    spec_file_space,
)
from tests.test_layer_model import WEIGHTS, device_truth

FIGS = spec_file_space("figs-mbv2-224")
FIGS_KEYS = list(dict.fromkeys(k for p in FIGS.positions for k in p.keys))
TRUTH = device_truth(FIGS_KEYS, WEIGHTS, wiggle=0.1, seed=1)
MEASURED = random.Random(0).sample(sorted(TRUTH), 40)


def served_cost(client: TestClient, tokens: dict[str, Headers], device: int) -> ChannelCost:
    """Register the space, upload 40 of its layers and 12 networks, fit, fetch the cost."""
    registered = client.post("/v1/spaces", json=FIGS.to_dict(), headers=tokens["admin"])
    assert registered.status_code in (200, 201), registered.text
    layers = [layer_measurement(k, TRUTH[k]) for k in MEASURED]
    archs = [[int(i) for i in a] for a in FIGS.sample(12, seed=2)]
    networks = [
        network_measurement(
            a,
            1.1 * sum(TRUTH[str(k)] for k in FIGS.network(a)) + 0.3,
            space=FIGS.name,
        )
        for a in archs
    ]
    for kind, rows in (("layers", layers), ("networks", networks)):
        stored = client.post(
            f"/v1/measurements/{kind}",
            json={"device_id": device, "measurements": rows},
            headers=tokens["ingest"],
        )
        assert stored.status_code == 201, stored.text
    fitted = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"])
    assert fitted.status_code == 201, fitted.text
    answer = client.get(
        f"/v1/devices/{device}/channel-cost", params={"space": FIGS.name}, headers=tokens["read"]
    )
    assert answer.status_code == 200, answer.text
    return TypeAdapter(ChannelCost).validate_json(answer.content)


def test_at_every_architecture_the_cost_module_equals_the_service_prediction(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    cost = served_cost(client, tokens, device)
    assert cost.unit == "ms"
    module = ChannelCostModule(cost)
    archs = [[int(i) for i in a] for a in FIGS.sample(60, seed=7)]
    predicted = client.post(
        "/v1/predict",
        json={"device_id": device, "space": FIGS.name, "architectures": archs},
        headers=tokens["read"],
    ).json()
    assert predicted["predictor_version"] == cost.predictor_version
    mine = [module.of(a) for a in archs]
    assert mine == pytest.approx(predicted["latency_ms"], rel=1e-9)
    # The predictor measured some of these layers, estimated others: both paths are exact.
    assert min(predicted["estimated_count"]) > 0
    # The calibration is in it: a networks' fit that is not the identity.
    assert (cost.a, cost.b) != (1.0, 0.0)
    # Decoding the channel counts of an architecture gives it back.
    for arch in archs[:10]:
        assert module.nearest(module.values_of(arch)) == tuple(arch)


def test_the_cost_is_smooth_between_architectures_and_its_gradient_checks(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    module = ChannelCostModule(served_cost(client, tokens, device))
    small, large = ([0] * FIGS.num_layers), ([2] * FIGS.num_layers)
    low, high = module.values_of(small), module.values_of(large)
    # Halfway in channels lies strictly between the two in latency, as it should.
    halfway = float(module((low + high) / 2))
    assert module.of(small) < halfway < module.of(large)
    # Off the kinks at the space's choices, autograd agrees with finite differences.
    point = (low + (high - low) * 0.37).requires_grad_(True)
    assert torch.autograd.gradcheck(module, (point,), eps=1e-4, atol=1e-6, rtol=1e-4)
    # Growing every layer together costs time all the way (a directional derivative).
    for t in (0.1, 0.37, 0.8):
        along = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(module(low + (high - low) * along), along)
        assert float(slope) > 0


def test_the_flop_twin_counts_two_flops_per_mac_of_the_same_network() -> None:
    artifact = fit_predictor({k: LayerEntry(TRUTH[k]) for k in MEASURED}, {})
    latency = channel_cost(artifact, compile_space(artifact, FIGS, version=3))
    flops = ChannelCostModule(flop_cost(latency, FIGS))
    assert flops.unit == "MFLOPs"
    for arch in FIGS.sample(20, seed=4):
        macs = sum(k.macs for k in FIGS.network(arch))
        assert flops.of(arch.tolist()) == pytest.approx(2e-6 * macs, rel=1e-12)
    # The MAC features are what LayerKey.macs counts, layer by layer.
    columns = [FEATURES.index(name) for name in MAC_FEATURES]
    summed = feature_matrix(FIGS_KEYS)[:, columns].sum(axis=1)
    assert summed.tolist() == [float(k.macs) for k in FIGS_KEYS]


def test_spaces_that_are_not_channel_counts_are_refused_with_the_decision_named(
    client: TestClient, tokens: dict[str, Headers], device: int
) -> None:
    served_cost(client, tokens, device)
    answer = client.get(
        f"/v1/devices/{device}/channel-cost",
        params={"space": "spnas-mobilenetv2-224"},
        headers=tokens["read"],
    )
    # The seed space's layers choose kernels and skip, not channel counts.
    assert answer.status_code == 422, answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] == "invalid_input"
    assert "stage0.layer0 chooses among" in body["detail"]
    assert "expansion only" in body["detail"]


def test_a_predictor_without_a_layer_model_says_it_cannot_price_channels() -> None:
    table_only = PredictorArtifact(layers={k: LayerEntry(v) for k, v in TRUTH.items()})
    compiled = compile_space(table_only, FIGS, version=1)
    with pytest.raises(NoLayerModel, match="fit the device again"):
        channel_cost(table_only, compiled)


def test_interpolation_weights_share_one_between_the_two_nearest_choices() -> None:
    choices = torch.tensor([24.0, 16.0, 32.0], dtype=torch.float64)
    weights = hat_weights(choices, torch.tensor(20.0, dtype=torch.float64))
    assert weights.tolist() == [0.5, 0.5, 0.0]
    assert hat_weights(choices, torch.tensor(40.0, dtype=torch.float64)).tolist() == [0, 0, 1]
    assert np.isclose(float(hat_weights(choices, torch.tensor(30.0)).sum()), 1.0)
