"""`hwlat export ...` as a user runs it: the command line, run in process (tests/fixtures/cli.py),
each test with an export cache of its own so that it can tell what was converted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.blocks import sample_input
from tests.fixtures.cli import CliResult, invoke

pytestmark = pytest.mark.heavy


def hwlat(*args: str, cache: Path) -> CliResult:
    return invoke(args, {**os.environ, "HWLAT_CACHE_DIR": str(cache)})


def assert_one_line_error(out: CliResult, *fragments: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_export_layer_onnx_writes_the_file(tmp_path: Path) -> None:
    key = "mbconv_hw8_i16_o16_k3_e3_s1_se"
    args = ["export", "layer", key, "--format", "onnx", "-o", str(tmp_path / "out")]
    out = hwlat(*args, cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    written = tmp_path / "out" / f"{key}.onnx"
    assert out.stdout.strip() == str(written)
    session = ort.InferenceSession(str(written), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": sample_input((1, 16, 8, 8))})
    assert y.shape == (1, 16, 8, 8)
    # The copy is the cached file, so a repeat is free and identical.
    cached = list((tmp_path / "cache" / "exports").glob("*.onnx"))
    assert len(cached) == 1
    assert cached[0].read_bytes() == written.read_bytes()


@pytest.mark.slow
def test_export_layer_tflite_int8(tmp_path: Path) -> None:
    from models.tflite_inspect import load_interpreter

    key = "conv_hw16_i3_o8_k3_s2"
    out = hwlat("export", "layer", key, "--int8", "-o", str(tmp_path), cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    written = tmp_path / f"{key}.int8.tflite"
    assert out.stdout.strip() == str(written)
    interpreter = load_interpreter(written)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert tuple(interpreter.get_output_details()[0]["shape"]) == (1, 8, 8, 8)
    # Converter chatter is swallowed: stderr carries nothing on success.
    assert out.stderr == ""


def test_export_arch_onnx(tmp_path: Path) -> None:
    target = tmp_path / "net.onnx"
    args = ["export", "arch", "tiny-64", "3,4,1,2", "-f", "onnx", "-o", str(target)]
    out = hwlat(*args, cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": sample_input((1, 3, 64, 64))})
    assert y.shape == (1, 10)


@pytest.mark.slow
def test_export_arch_tflite_joins_layers_unless_told_to_convert(tmp_path: Path) -> None:
    from models.tflite_inspect import run_float

    joined, converted = tmp_path / "joined.tflite", tmp_path / "converted.tflite"
    for target, extra in ((joined, []), (converted, ["--convert"])):
        args = ["export", "arch", "tiny-64", "3,4,1,2", *extra, "-o", str(target)]
        out = hwlat(*args, cache=tmp_path / "cache")
        assert out.returncode == 0, out.stderr
    assert joined.read_bytes() != converted.read_bytes()
    x = sample_input((1, 64, 64, 3))
    np.testing.assert_array_equal(run_float(joined, x), run_float(converted, x))
    described = [p.read_text() for p in (tmp_path / "cache" / "exports").glob("*.json")]
    assert sum('"method": "assemble"' in d for d in described) == 1
    assert sum('"method": "convert"' in d for d in described) == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("layer", "mbconv_hw56_i24_o40_k5_x6_s2"), ("bad token 'x6'",)),
        (("layer", "skip_hw28_i40_o40"), ("skip", "nothing to build or export")),
        (("layer", "conv_hw16_i3_o8_k3_s2", "--format", "pb"), ("unknown export format 'pb'",)),
        (("arch", "tiny-64", "0,1,two,3"), ("comma-separated candidate indices",)),
        (("arch", "tiny-64", "0,1,9,3"), ("position 2", "out of range")),
        (("arch", "tiny-64", "0,1"), ("has 4 decisions",)),
        (("arch", "no-such-space", "0"), ("unknown search space 'no-such-space'", "tiny-64")),
        (("variants", "tiny-64", "--format", "tf"), ("unknown export format 'tf'",)),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    out = hwlat("export", *args, "-o", str(tmp_path / "x"), cache=tmp_path / "cache")
    assert_one_line_error(out, *fragments)
    assert not list((tmp_path / "cache").rglob("*.tflite"))  # nothing converted


def test_layer_output_must_be_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("")
    out = hwlat("export", "layer", "conv_hw16_i3_o8_k3_s2", "-o", str(a_file), cache=tmp_path)
    assert_one_line_error(out, "is a file")


def test_export_variants_onnx_copies_every_variant(tmp_path: Path) -> None:
    from models.spaces import get_space

    args = ["export", "variants", "tiny-64", "-f", "onnx", "--workers", "1", "--no-progress"]
    out = hwlat(*args, "-o", str(tmp_path / "out"), cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    expected = [str(k) for k in get_space("tiny-64").variants()]
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [key for key, _ in rows] == expected
    assert [Path(path).name for _, path in rows] == [f"{k}.onnx" for k in expected]
    assert all(Path(path).stat().st_size > 0 for _, path in rows)
