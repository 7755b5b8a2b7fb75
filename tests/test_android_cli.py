"""`hwlat agent android` as a user runs it (the command line, in process): a real service,
emulated phones behind adb."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.cli import invoke
from tests.fixtures.services import Service, list_layers

pytestmark = pytest.mark.heavy

if TYPE_CHECKING:  # importing it for real would load the plugin before pytest rewrites it
    from tests.emulated_phone.fixtures import MakePhones


KEYS = ["mbconv_hw32_i8_o16_k3_e3_s2", "mbconv_hw16_i16_o24_k5_e6_s2"]


def test_agent_android_serves_every_phone_until_idle(
    service: Service, make_phones: MakePhones, benchmark_binary: Path
) -> None:
    make_phones(2)
    env = {**os.environ, "HWLAT_SERVICE_URL": service.url, "HWLAT_TOKEN": service.token}
    queued = invoke(
        [
            "jobs",
            "create",
            "--selector",
            "kind=android",
            "--chunk",
            "1",
            "--warmup-runs",
            "1",
            "--num-runs",
            "3",
            *[a for k in KEYS for a in ("--layer", k)],
        ],
        env,
    )
    assert queued.returncode == 0, queued.stderr
    ran = invoke(
        [
            "agent",
            "android",
            "--benchmark-binary",
            str(benchmark_binary),
            "--until-idle",
            "--poll",
            "0.2",
        ],
        env,
    )
    assert ran.returncode == 0, ran.stderr
    lines = sorted(ran.stdout.splitlines())
    assert [line.split()[0] for line in lines] == ["EMU0001", "EMU0002"]
    done = sum(int(line.split("jobs done ")[1].split(",")[0]) for line in lines)
    assert done == len(KEYS)
    with service.http() as client:
        devices = [d for d in client.get("/v1/devices").json()["items"] if d["kind"] == "android"]
        stored = [row for d in devices for row in list_layers(client, d["id"])]
    assert sorted(r["layer_key"] for r in stored) == sorted(KEYS)


def test_agent_android_without_a_binary_is_a_one_line_error(tmp_path: Path) -> None:
    out = invoke(
        ["agent", "android", "--benchmark-binary", str(tmp_path / "nope")], dict(os.environ)
    )
    assert out.returncode == 2
    assert "is not a file" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_charging_phone_measures_energy_only_with_allow_charging(
    service: Service, make_phones: MakePhones, benchmark_binary: Path
) -> None:
    (phone,) = make_phones(1)
    phone.set_power(charging=True)
    env = {**os.environ, "HWLAT_SERVICE_URL": service.url, "HWLAT_TOKEN": service.token}
    # A layer of its own: the test above counts the rows of KEYS in the same service.
    layer = "mbconv_hw8_i24_o24_k3_e6_s1"
    job = ["jobs", "create", "--selector", "kind=android", "--num-runs", "3", "--layer", layer]
    queued = invoke([*job, "--metric", "energy", "--max-attempts", "1"], env)
    assert queued.returncode == 0, queued.stderr
    agent = ["agent", "android", "--benchmark-binary", str(benchmark_binary), "--until-idle"]
    refused = invoke([*agent, "--poll", "0.2"], env)
    assert refused.returncode == 0, refused.stderr
    assert "failed 1" in refused.stdout
    job_id = queued.stdout.split()[1]  # "job 7\tprofile_layers\t1 items"
    listed = invoke(["jobs", "list"], env)
    (line,) = [ln for ln in listed.stdout.splitlines() if ln.split("\t")[0] == job_id]
    assert line.split("\t")[1] == "failed"
    queued = invoke([*job, "--metric", "energy"], env)
    assert queued.returncode == 0, queued.stderr
    allowed = invoke([*agent, "--poll", "0.2", "--allow-charging"], env)
    assert allowed.returncode == 0, allowed.stderr
    with service.http() as client:
        # The module's service also holds the phones of the test above: read all of them.
        devices = [d for d in client.get("/v1/devices").json()["items"] if d["kind"] == "android"]
        rows = [
            r for d in devices for r in list_layers(client, d["id"]) if r["energy_mj"] is not None
        ]
    assert len(rows) == 1
    assert rows[0]["energy_mj"] > 0
    assert rows[0]["energy_detail"]["charging"] is True
