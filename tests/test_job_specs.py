"""Splitting work into profiling jobs."""

from __future__ import annotations

import pytest

from device_agents.job_specs import job_specs
from models import get_space

TINY = get_space("tiny-64")


def test_layers_then_networks_in_chunks() -> None:
    specs = job_specs(
        layers=TINY.variants(), space=TINY, architectures=TINY.sample(10, seed=0), chunk=8
    )
    assert [s["kind"] for s in specs] == ["profile_layers"] * 3 + ["profile_networks"] * 2
    assert [len(s["payload"]["layer_keys"]) for s in specs[:3]] == [8, 8, 4]
    assert specs[3]["payload"]["space"] == "tiny-64"
    assert [len(s["payload"]["architectures"]) for s in specs[3:]] == [8, 2]
    assert all(isinstance(i, int) for i in specs[3]["payload"]["architectures"][0])


def test_bad_requests_are_named() -> None:
    with pytest.raises(ValueError, match="chunk=0"):
        job_specs(layers=TINY.variants(), chunk=0)
    with pytest.raises(ValueError, match="search space"):
        job_specs(architectures=[[0, 0, 0, 0]], chunk=4)
