"""``hwlat profile`` against the real service and a real host agent serving the device: rounds
of plan, measure, automatic fit, until the budget is spent."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from device_agents.worker import REFERENCE_KEY
from models import get_space
from tests.fixtures.cli import invoke
from tests.fixtures.factories import HOST_DEVICE
from tests.fixtures.services import MakeService

pytestmark = pytest.mark.heavy

TINY = get_space("tiny-64")


def test_profile_measures_the_budget_in_rounds_and_each_round_refits(
    make_service: MakeService,
) -> None:
    service = make_service("profile")
    env = service.cli_env()
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hwlat.cli",
            "agent",
            "host",
            "--name",
            "profiled",
            "--max-busy-pct",
            "100",
            "--no-gate",
            "--poll",
            "0.3",
            "--warmup-runs",
            "2",
            "--num-runs",
            "5",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with service.http() as client:
            deadline = time.monotonic() + 60
            while not (devices := client.get("/v1/devices").json()["items"]):
                assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
                assert time.monotonic() < deadline, "the agent never registered its device"
                time.sleep(0.2)
        device = str(devices[0]["id"])
        ran = invoke(
            [
                "profile",
                "--device",
                device,
                "--space",
                TINY.name,
                "--budget",
                "9",
                "--step",
                "4",
                "--networks",
                "3",
                "--sample",
                "30",
                "--timeout",
                "120",
            ],
            env,
        )
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert ran.returncode == 0, ran.stderr
    assert "round 1: 0 layers measured, expected network error unknown" in ran.stdout
    assert "round 2: 4 layers measured" in ran.stdout
    assert "round 4: 9 layers measured" in ran.stdout
    assert "done: the budget's 9 layers are measured" in ran.stdout
    with service.http() as client:
        layers = client.get("/v1/measurements/layers", params={"device_id": device}).json()
        networks = client.get("/v1/measurements/networks", params={"device_id": device}).json()
        versions = client.get(f"/v1/devices/{device}/predictors").json()["items"]
    # Network jobs also time the agent's drift reference layer beside the networks.
    chosen = {m["layer_key"] for m in layers["items"]} - {str(REFERENCE_KEY)}
    assert len(chosen) == 9
    assert len({tuple(m["architecture"]) for m in networks["items"]}) == 3
    # Jobs fitted versions as they completed; the newest knows all nine layers.
    assert versions
    assert versions[-1]["metrics"]["n_layers"] == 9


def test_profile_names_an_unknown_device_or_space_and_queues_nothing(
    make_service: MakeService,
) -> None:
    service = make_service("profile-bad-input")
    env = service.cli_env()
    with service.http() as client:
        device = str(client.post("/v1/devices", json=HOST_DEVICE).json()["id"])
    unknown_device = invoke(
        ["profile", "--device", "999999", "--space", TINY.name, "--budget", "3"], env
    )
    assert unknown_device.returncode == 2
    assert "999999" in unknown_device.stderr
    unknown_space = invoke(["profile", "--device", device, "--space", "nope", "--budget", "3"], env)
    assert unknown_space.returncode == 2
    assert "nope" in unknown_space.stderr
    with service.http() as client:
        assert client.get("/v1/jobs").json()["items"] == []
