"""`hwlat space ...` through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models.spaces import get_space


def hwlat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hwlat.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_space_list_names_every_builtin() -> None:
    out = hwlat("space", "list")
    assert out.returncode == 0, out.stderr
    assert "spnas-mobilenetv2-224\t20 searchable layers\t45 variants" in out.stdout
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


@pytest.mark.parametrize("args", [("space", "show", "no-such-space"), ("space", "layers", "nope")])
def test_bad_input_exits_nonzero_with_one_line_and_no_traceback(args: tuple[str, ...]) -> None:
    out = hwlat(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "unknown search space 'no" in out.stderr
