"""The content-addressed export cache and the parallel variant exporter."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from models.export import (
    EXPORTER_VERSION,
    ExportFormat,
    ExportMethod,
    ExportSpec,
    Precision,
    artifact_path,
    cache_root,
    converters,
    export_keys,
    export_layer,
    export_specs,
    export_variants,
)
from models.export import parallel as parallel_module
from models.export import spec as spec_module
from models.layer_key import parse

pytestmark = pytest.mark.heavy

KEY = "mbconv_hw8_i16_o16_k3_e3_s1"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HWLAT_CACHE_DIR", str(root))
    return root


@pytest.fixture
def fake_convert(monkeypatch: pytest.MonkeyPatch) -> list[ExportSpec]:
    """Replace the real converters with one that records its calls and writes a stub."""
    calls: list[ExportSpec] = []

    def convert(spec: ExportSpec, out: Path) -> None:
        calls.append(spec)
        out.write_text(spec.label)

    monkeypatch.setattr(converters, "convert", convert)
    return calls


def forbid_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    def convert(spec: ExportSpec, out: Path) -> None:
        raise AssertionError(f"{spec.label} was converted again instead of read from the cache")

    monkeypatch.setattr(converters, "convert", convert)


def test_cache_dir_comes_from_the_environment(cache_dir: Path) -> None:
    assert cache_root() == cache_dir
    assert cache_root(cache_dir / "explicit") == cache_dir / "explicit"


def test_default_cache_dir_is_under_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HWLAT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert cache_root() == Path("/somewhere/cache/hwlat")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "hwlat"


def test_second_export_reads_the_cache(
    cache_dir: Path, fake_convert: list[ExportSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = export_layer(KEY, "tflite")
    assert first.parent == cache_dir / "exports"
    assert first.read_text() == KEY
    assert len(fake_convert) == 1
    forbid_conversion(monkeypatch)
    assert export_layer(parse(KEY), ExportFormat.TFLITE, Precision.FP32) == first


def test_name_is_a_hash_of_everything_that_shapes_the_file(
    cache_dir: Path, fake_convert: list[ExportSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = {
        export_layer(KEY, "tflite", "fp32"),
        export_layer(KEY, "tflite", "int8"),
        export_layer(KEY, "onnx", "fp32"),
        export_layer("mbconv_hw8_i16_o16_k5_e3_s1", "tflite", "fp32"),
        # A one-layer network is not the bare layer.
        export_keys([KEY], "tflite", "fp32", method="convert"),
    }
    assert len(paths) == 5
    assert len(fake_convert) == 5
    spec = ExportSpec.layer(parse(KEY), ExportFormat.TFLITE, Precision.FP32)
    # A new converter version means a new file, not a stale hit.
    before = artifact_path(spec)
    spec_module.converter_versions.cache_clear()
    monkeypatch.setattr(spec_module, "_installed_version", lambda _names: "99.0")
    try:
        assert artifact_path(spec) != before
    finally:
        spec_module.converter_versions.cache_clear()


def test_assembled_and_converted_networks_have_different_names(cache_dir: Path) -> None:
    keys = [parse(KEY), parse("mbconv_hw8_i16_o24_k3_e3_s2")]
    assembled = ExportSpec.network(keys, "tflite", "fp32")
    converted = ExportSpec.network(keys, "tflite", "fp32", "convert")
    assert assembled.method is ExportMethod.ASSEMBLE  # the default for tflite
    assert artifact_path(assembled) != artifact_path(converted)
    assert assembled.describe()["method"] == "assemble"
    assert {"ai-edge-litert", "flatbuffers"} <= assembled.describe()["assembler"].keys()
    assert "assembler" not in converted.describe()
    # int8 networks are joined from fp32 layers, then quantised.
    int8 = ExportSpec.network(keys, "tflite", "int8")
    assert {s.precision for s in int8.layer_specs()} == {Precision.FP32}
    assert ExportSpec.network(keys, "onnx", "fp32").method is ExportMethod.CONVERT
    with pytest.raises(ValueError, match="onnx networks cannot be assembled"):
        ExportSpec.network(keys, "onnx", "fp32", "assemble")
    with pytest.raises(ValueError, match="unknown export method 'glue'"):
        ExportSpec.network(keys, "tflite", "fp32", "glue")
    with pytest.raises(ValueError, match="converted whole"):
        converted.layer_specs()


def test_metadata_describes_the_file(cache_dir: Path, fake_convert: list[ExportSpec]) -> None:
    path = export_layer(KEY, "onnx", "int8")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["keys"] == [KEY]
    assert meta["format"] == "onnx"
    assert meta["precision"] == "int8"
    assert meta["exporter_version"] == EXPORTER_VERSION
    assert {"torch", "onnx", "onnxruntime"} <= meta["converter"].keys()
    assert path.name.startswith(ExportSpec.layer(parse(KEY), "onnx", "int8").digest())


def test_failed_conversion_leaves_no_file(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_fail(spec: ExportSpec, out: Path) -> None:
        out.write_bytes(b"half a model")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(converters, "convert", half_then_fail)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_layer(KEY, "tflite")
    assert list((cache_dir / "exports").iterdir()) == []  # no model, temp file or metadata


def test_two_exporters_of_one_file_convert_it_once(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second waits for the first (a lock per file) and finds its file."""
    real_convert = converters.convert
    calls: list[str] = []

    def slow_convert(spec: ExportSpec, out: Path) -> None:
        calls.append(spec.label)
        time.sleep(0.3)  # long enough for the other thread to arrive while this one converts
        real_convert(spec, out)

    monkeypatch.setattr(converters, "convert", slow_convert)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: export_layer(KEY, "tflite"), range(2)))
    assert calls == [str(parse(KEY))]
    assert paths[0] == paths[1]
    assert paths[0].exists()


def test_skip_and_bad_arguments_are_rejected(cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="nothing to build or export"):
        export_layer("skip_hw8_i16_o16")
    with pytest.raises(ValueError, match="unknown export format 'pb'"):
        export_layer(KEY, "pb")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        export_layer(KEY, "tflite", "fp16")
    with pytest.raises(ValueError, match="nothing to build or export"):
        export_variants([KEY, "skip_hw8_i16_o16"], progress=False)
    with pytest.raises(ValueError, match="workers"):
        export_variants([KEY], workers=0, progress=False)


def test_variants_in_process_dedupes_and_skips_cached(
    cache_dir: Path, fake_convert: list[ExportSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [KEY, "conv_hw16_i3_o8_k3_s2", KEY]
    export_layer(KEY)
    paths = export_variants(keys, workers=1, progress=False)
    assert list(paths) == [parse(KEY), parse("conv_hw16_i3_o8_k3_s2")]
    assert [s.keys[0] for s in fake_convert] == [parse(KEY), parse("conv_hw16_i3_o8_k3_s2")]
    assert all(p.exists() for p in paths.values())


@pytest.mark.slow
def test_a_process_pool_exports_layers_and_networks_then_the_cache_answers(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["conv_hw16_i3_o8_k3_s2", "mbconv_hw8_i8_o8_k3_e3_s1", "head_hw4_i16_o32_c10"]
    network = ["conv_hw16_i3_o8_k3_s2", "mbconv_hw8_i8_o16_k5_e3_s2", "head_hw4_i16_o32_c10"]
    specs = [ExportSpec.layer(parse(k), "tflite", "fp32") for k in keys]
    specs.append(ExportSpec.network([parse(k) for k in network], "tflite", "fp32", "convert"))
    paths = export_specs(specs, workers=2, progress=True)
    assert list(paths) == specs
    for spec, path in paths.items():
        assert path == artifact_path(spec)
        assert path.read_bytes()[4:8] == b"TFL3"  # the TFLite flatbuffer identifier
    assert "4/4" in capsys.readouterr().err  # the progress bar went to stderr
    mtimes = {p: p.stat().st_mtime_ns for p in paths.values()}

    def no_pool(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("cached files were resubmitted to a process pool")

    monkeypatch.setattr(parallel_module, "ProcessPoolExecutor", no_pool)
    forbid_conversion(monkeypatch)
    variants = export_variants(keys, "tflite", workers=2, progress=False)
    assert [str(k) for k in variants] == keys
    assert list(variants.values()) == [paths[s] for s in specs[:3]]
    assert export_specs(specs, workers=2) == paths
    assert {p: p.stat().st_mtime_ns for p in paths.values()} == mtimes
    assert not [p for p in os.listdir(cache_dir / "exports") if p.endswith(".tmp")]
