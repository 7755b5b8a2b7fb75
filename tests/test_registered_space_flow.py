"""A space a lab registers (no shipped file) flows through the real service and a real host
agent: registration, profiling its layers and networks, a fit, predictions, and a Pareto search
whose front the service predicts the same way."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from models import Op, get_space
from tests.fixtures.cli import invoke
from tests.fixtures.factories import elastic_spec
from tests.fixtures.services import MakeService

pytestmark = pytest.mark.heavy


def _spec(name: str) -> dict[str, object]:
    """Elastic in resolution, width and depth, with OFA's SE and MobileNetV3's pooled head,
    small enough to profile in seconds."""
    return elastic_spec(
        name,
        input={"channels": 3, "resolutions": [32, 48]},
        stem=[{"op": "conv", "out": 8, "kernel": 3, "stride": 2, "act": "hswish"}],
        stages=[
            {
                "widths": [8, 16],
                "depths": [1, 2],
                "stride": 2,
                "candidates": ["k3e3", "k5e3se"],
                "se": "mid",
                "act": "hswish",
            },
            {
                "widths": [16],
                "depths": [2],
                "stride": 2,
                "candidates": ["k3e3", "k3e6"],
                "skip": True,
            },
        ],
        head=[
            {"op": "conv", "out": 64, "kernel": 1, "act": "hswish"},
            {"op": "pool"},
            {"op": "conv", "out": 96, "kernel": 1, "act": "hswish"},
            {"op": "logits", "classes": 10},
        ],
    )


def test_a_registered_space_is_profiled_fitted_predicted_and_searched(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service("registered-space")
    env = service.cli_env()
    name = f"lab-{uuid.uuid4().hex[:8]}"
    spec_file = tmp_path / "lab.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(name)))
    registered = invoke(["space", "register", str(spec_file)], env)
    assert registered.returncode == 0, registered.stderr
    space = get_space(name)
    # The agent builds, exports and times OFA's SE and the pooled head too.
    assert any(k.se_mid for k in space.variants())
    assert any(k.op is Op.POOL for k in space.variants())
    timing = ["--warmup-runs", "2", "--num-runs", "5", "--repeats", "1"]
    for what in (["--space", name], ["--space", name, "--networks", "10", "--seed", "1"]):
        queued = invoke(
            ["jobs", "create", "--selector", "kind=host", *what, "--chunk", "100", *timing], env
        )
        assert queued.returncode == 0, queued.stderr
    ran = invoke(
        [
            "agent",
            "host",
            "--until-idle",
            "--name",
            "lab-host",
            "--max-busy-pct",
            "100",
            "--no-gate",
        ],
        env,
    )
    assert ran.returncode == 0, ran.stderr
    variants = len(space.variants())
    assert f"jobs done 2, failed 0, lost 0; {variants + 10} measurements stored" in ran.stdout
    with service.http() as client:
        device = client.get("/v1/devices").json()["items"][0]["id"]
        networks = client.get("/v1/measurements/networks", params={"device_id": device}).json()
    assert {m["space_sha256"] for m in networks["items"]} == {space.digest}

    fitted = invoke(["fit", "--device", str(device)], env)
    assert fitted.returncode == 0, fitted.stderr
    predicted = invoke(
        ["predict", "--device", str(device), "--space", name, "--sample", "6", "--json"], env
    )
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert len(answer["latency_ms"]) == 6
    assert answer["estimated_count"] == [0] * 6  # every variant was profiled
    assert all(ms > 0 for ms in answer["latency_ms"])

    report = tmp_path / "pareto.json"
    searched = invoke(
        [
            "search",
            "pareto",
            "--device",
            str(device),
            "--space",
            name,
            "--trials",
            "12",
            "--population",
            "4",
            "--supernet-epochs",
            "1",
            "--resolution",
            "12",
            "--threads",
            "1",
            "--report",
            str(report),
            "--plot",
            str(tmp_path / "front.png"),
        ],
        env,
    )
    assert searched.returncode == 0, searched.stderr
    result = json.loads(report.read_text())
    assert result["space"] == name
    assert result["trials_in_study"] == 12
    front = result["front"]
    assert front
    with service.http() as client:
        again = client.post(
            "/v1/predict",
            json={
                "device_id": device,
                "space": name,
                "architectures": [r["architecture"] for r in front],
            },
        ).json()
    assert again["latency_ms"] == pytest.approx([r["latency_ms"] for r in front])
    labels = [
        [d.choices[i] for d, i in zip(space.decisions, r["architecture"], strict=True)]
        for r in front
    ]
    assert [r["labels"] for r in front] == labels
    assert (tmp_path / "front.png").stat().st_size > 0
