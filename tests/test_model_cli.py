"""`hwlat fit` and `hwlat predict` against a real service process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import invoke as run_hwlat
from tests.fixtures.factories import HAND, hand_sum, layer_measurement
from tests.fixtures.services import Service, register_device


def test_fit_then_predict_from_the_command_line(service: Service, tmp_path: Path) -> None:
    cli_env = service.cli_env()
    with service.http() as client:
        device = register_device(client)
        items = [layer_measurement(k, ms) for k, ms in HAND.items()]
        client.post(
            "/v1/measurements/layers", json={"device_id": device, "measurements": items}
        ).raise_for_status()
    no_fit = run_hwlat(
        ["predict", "--device", str(device), "--space", "tiny-64", "--arch", "0,0,0,0"], cli_env
    )
    assert no_fit.returncode == 2
    assert "no_predictor" in no_fit.stderr
    fitted = run_hwlat(["fit", "--device", str(device)], cli_env)
    assert fitted.returncode == 0, fitted.stderr
    assert f"device {device}: predictor v1 (21 layers, 0 networks)" in fitted.stdout
    (tmp_path / "archs.txt").write_text("3,4,2,4\n1,2,3,0\n")
    out = run_hwlat(
        [
            "predict",
            "--device",
            str(device),
            "--space",
            "tiny-64",
            "--arch",
            "0,0,0,0",
            "--file",
            str(tmp_path / "archs.txt"),
        ],
        cli_env,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == ["0,0,0,0", "3,4,2,4", "1,2,3,0"]
    for arch, ms, _ in rows:
        expected = hand_sum([int(i) for i in arch.split(",")])
        assert float(ms.split()[0]) == pytest.approx(expected, abs=1e-3)
    bad = run_hwlat(
        ["predict", "--device", str(device), "--space", "tiny-64", "--arch", "0,0,x,0"], cli_env
    )
    assert bad.returncode == 2
    assert "comma-separated integers" in bad.stderr
    assert "Traceback" not in bad.stderr
