"""`hwlat space ...` through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from models.spaces import get_space
from tests.fixtures.cli import invoke
from tests.fixtures.factories import elastic_spec
from tests.fixtures.services import Service


def hwlat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hwlat.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_space_list_names_every_builtin() -> None:
    out = hwlat("space", "list")
    assert out.returncode == 0, out.stderr
    assert "spnas-mobilenetv2-224\t20 decisions\t45 variants" in out.stdout
    assert "tiny-64" in out.stdout


def test_space_show_prints_the_definition_as_json() -> None:
    out = hwlat("space", "show", "tiny-64")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == get_space("tiny-64").to_dict()


def test_space_layers_prints_the_variant_set() -> None:
    out = hwlat("space", "layers", "spnas-mobilenetv2-224")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 45
    assert lines[0] == "conv_hw224_i3_o32_k3_s2"
    assert "mbconv_hw56_i24_o40_k5_e6_s2" in lines


def test_space_sample_is_deterministic_and_valid() -> None:
    first = hwlat("space", "sample", "spnas-mobilenetv2-224", "--n", "5", "--seed", "3")
    again = hwlat("space", "sample", "spnas-mobilenetv2-224", "--n", "5", "--seed", "3")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    rows = [[int(i) for i in line.split(",")] for line in first.stdout.splitlines()]
    assert len(rows) == 5
    space = get_space("spnas-mobilenetv2-224")
    for row in rows:
        space.validate(row)


def test_a_spec_file_is_registered_shown_and_sampled_through_the_service(
    service: Service, tmp_path: Path
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(elastic_spec(name)))
    env = service.cli_env()
    first = invoke(["space", "register", str(path)], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"{name}\tsha256 ")
    assert "\telastic" in first.stdout
    assert invoke(["space", "register", str(path)], env).returncode == 0  # the same spec
    changed = elastic_spec(name, description="another")
    path.write_text(yaml.safe_dump(changed))
    refused = invoke(["space", "register", str(path)], env)
    assert refused.returncode == 2
    assert "register this one under a new name" in refused.stderr
    assert refused.stderr.count("\n") == 1
    # show/layers/sample read the registered spec back from the service (a fresh process
    # would know nothing of it; this one forgets nothing, so ask a process that never saw it).
    shown = subprocess.run(
        [sys.executable, "-m", "hwlat.cli", "space", "show", name],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == get_space(name).to_dict()
    listed = invoke(["space", "list", "--remote"], env)
    assert f"{name}\t7 decisions\t" in listed.stdout
    sampled = invoke(["space", "sample", name, "--n", "3"], env)
    assert [
        get_space(name).validate([int(i) for i in line.split(",")])
        for line in sampled.stdout.split()
    ]


def test_a_bad_spec_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    spec = elastic_spec("bad-one")
    spec["stages"][0]["candidates"] = ["k3e3", "k4e3"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    out = invoke(["space", "register", str(path), "--service", "http://127.0.0.1:9"])
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "stages.0.candidates.1: kernel 4" in out.stderr


@pytest.mark.parametrize("args", [("space", "show", "no-such-space"), ("space", "layers", "nope")])
def test_unknown_names_exit_2_with_one_line_and_no_traceback(
    service: Service, args: tuple[str, ...]
) -> None:
    out = invoke(args, service.cli_env())
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "no search space 'no" in out.stderr
