"""Splitting work into profiling job payloads."""

from __future__ import annotations

import pytest

from latency_api.schemas.jobs import ProfileLayers, ProfileNetworks, split_payloads
from models import get_space

TINY = get_space("tiny-64")


def test_layers_then_networks_in_chunks() -> None:
    payloads = split_payloads(
        layers=TINY.variants(), space=TINY.name, architectures=TINY.sample(10, seed=0), chunk=8
    )
    assert [p.kind for p in payloads] == ["profile_layers"] * 3 + ["profile_networks"] * 2
    layers = [p for p in payloads if isinstance(p, ProfileLayers)]
    networks = [p for p in payloads if isinstance(p, ProfileNetworks)]
    assert [len(p.layer_keys) for p in layers] == [8, 8, 5]
    assert networks[0].space == "tiny-64"
    assert [len(p.architectures) for p in networks] == [8, 2]
    assert all(type(i) is int for i in networks[0].architectures[0])


def test_bad_requests_are_named() -> None:
    with pytest.raises(ValueError, match="chunk=0"):
        split_payloads(layers=TINY.variants(), chunk=0)
    with pytest.raises(ValueError, match="search space"):
        split_payloads(architectures=[[0, 0, 0, 0]], chunk=4)
    with pytest.raises(ValueError, match="candidate 9 out of range"):
        split_payloads(space=TINY.name, architectures=[[0, 0, 0, 9]], chunk=4)
