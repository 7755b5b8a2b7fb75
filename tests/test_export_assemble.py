"""Networks assembled from cached layer files are the networks the converter makes.

Compared op for op (builtin code, version, options), tensor for tensor (the correspondence the
operators induce must be one to one and cover every tensor; shapes, types, quantisation and
constant bytes equal), by model metadata, and by LiteRT outputs on the same inputs. fp32 and
int8 both come out identical, so the outputs are compared for equality, not closeness.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from models.blocks import sample_input
from models.export import ExportMethod, ExportSpec, export_keys, export_layer, export_specs
from models.export.assemble import (
    CONVERSION_METADATA,
    MIN_RUNTIME_VERSION,
    AssemblyError,
    join_tflite,
    read_metadata,
)
from models.layer_key import LayerKey, Op, parse
from models.spaces import get_space
from models.tflite_inspect import load_interpreter, operator_names, run_float
from tests.fixtures.factories import spec_file_space

pytestmark = [pytest.mark.slow, pytest.mark.heavy]


def network(space: str, arch: tuple[int, ...]) -> tuple[LayerKey, ...]:
    return get_space(space).network(arch)


SPNAS_ARCH = (1, 1, 1, 4, 2, 2, 4, 4, 0, 3, 3, 3, 1, 4, 1, 1, 3, 3, 3, 4)


NETWORKS = [
    pytest.param(network("tiny-64", (0, 1, 2, 3)), id="tiny-0123"),
    pytest.param(network("tiny-64", (3, 4, 1, 2)), id="tiny-skip"),
    pytest.param(network("tiny-64", (2, 4, 0, 4)), id="tiny-2skips"),
    # Skips, and the same key several times in a row (shared weights): both matter here.
    pytest.param(
        network(
            "spnas-mobilenetv2-224", (1, 1, 1, 4, 2, 2, 4, 4, 0, 3, 3, 3, 1, 4, 1, 1, 3, 3, 3, 4)
        ),
        id="spnas",
    ),
    # The other operators keys can make: h-swish, swish (LOGISTIC, MUL), squeeze-excitation
    # (MEAN, LOGISTIC, MUL), a 1x1 feature-mix conv and pooling + classifier (logits).
    pytest.param(
        tuple(
            parse(k)
            for k in (
                "conv_hw32_i3_o16_k3_s2_hswish",
                "mbconv_hw16_i16_o24_k3_e4_s2_se_hswish",
                "mbconv_hw8_i24_o24_k5_e3_s1_se",
                "mbconv_hw8_i24_o24_k3_e6_s1_swish",
                "conv_hw8_i24_o64_k1_s1_hswish",
                "logits_hw8_i64_c10",
            )
        ),
        id="other-ops",
    ),
    # OFA MobileNetV3's: SE on the expanded channels with an h_sigmoid gate (sem), and its
    # head: final expand, global pool, 1x1 feature-mix conv at 1x1, classifier.
    pytest.param(
        tuple(
            parse(k)
            for k in (
                "conv_hw32_i3_o16_k3_s2_hswish",
                "mbconv_hw16_i16_o24_k3_e3_s2_sem_relu",
                "mbconv_hw8_i24_o24_k5_e4_s1_sem_hswish",
                "conv_hw8_i24_o96_k1_s1_hswish",
                "pool_hw8_i96",
                "conv_hw1_i96_o128_k1_s1_hswish",
                "logits_hw1_i128_c10",
            )
        ),
        id="ofa-mbv3-ops",
    ),
]
OP_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items() if name.isupper()}


def blocks_of(space: str, arch: tuple[int, ...]) -> list[LayerKey]:
    return [k for k in get_space(space).network(arch) if k.op is not Op.SKIP]


def layer_bytes(keys: list[LayerKey], export_cache: Path, precision: str = "fp32") -> list[bytes]:
    return [export_layer(k, "tflite", precision, cache_dir=export_cache).read_bytes() for k in keys]


# -- comparing two models -------------------------------------------------------------------


def unpack(data: bytes) -> Any:
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    assert len(model.subgraphs) == 1
    return model


def plain(value: Any) -> Any:
    """Options objects and arrays as comparable plain data."""
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if hasattr(value, "__dict__"):
        return {name: plain(field) for name, field in vars(value).items()}
    if isinstance(value, list):
        return tuple(plain(v) for v in value)
    return value


def operator_signature(model: Any, op: Any) -> tuple[Any, ...]:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return (
        OP_NAMES[builtin],
        code.version,
        code.customCode,
        op.builtinOptionsType,
        plain(op.builtinOptions),
        plain(op.customOptions),
        len(op.inputs),
        len(op.outputs),
    )


def tensor_signature(model: Any, tensor: Any) -> tuple[Any, ...]:
    data = model.buffers[tensor.buffer].data
    content = None if data is None or len(data) == 0 else data.tobytes()
    q = tensor.quantization
    quantisation = None
    if q is not None and q.scale is not None and len(q.scale):
        quantisation = (plain(q.scale), plain(q.zeroPoint), q.quantizedDimension)
    return (
        plain(tensor.shape),
        plain(tensor.shapeSignature),
        tensor.type,
        quantisation,
        content,
        tensor.isVariable,
    )


def tensor_correspondence(a: Any, b: Any) -> dict[int, int]:
    """The one-to-one map between the two graphs' tensors that their operators induce."""
    ga, gb = a.subgraphs[0], b.subgraphs[0]
    pairs: dict[int, int] = {}
    reverse: dict[int, int] = {}
    linked = [(ga.inputs, gb.inputs), (ga.outputs, gb.outputs)]
    for oa, ob in zip(ga.operators, gb.operators, strict=True):
        linked += [(oa.inputs, ob.inputs), (oa.outputs, ob.outputs)]
    for xs, ys in linked:
        for x, y in zip(xs, ys, strict=True):
            if x < 0 or y < 0:
                assert x == y, "an optional input is absent in only one model"
                continue
            assert pairs.setdefault(int(x), int(y)) == y, f"tensor {x} plays two roles"
            assert reverse.setdefault(int(y), int(x)) == x, f"tensor {y} plays two roles"
    assert len(pairs) == len(ga.tensors) == len(gb.tensors), "tensor counts differ"
    return pairs


def assert_same_model(assembled: bytes, converted: bytes) -> None:
    a, b = unpack(assembled), unpack(converted)
    ga, gb = a.subgraphs[0], b.subgraphs[0]
    ops_a = [operator_signature(a, op) for op in ga.operators]
    ops_b = [operator_signature(b, op) for op in gb.operators]
    assert ops_a == ops_b
    pairs = tensor_correspondence(a, b)
    for x, y in pairs.items():
        assert tensor_signature(a, ga.tensors[x]) == tensor_signature(b, gb.tensors[y]), (
            f"tensor {ga.tensors[x].name!r} differs from {gb.tensors[y].name!r}"
        )
    # Equal constants are stored once in both: as many distinct weight buffers.
    assert len(constant_buffers(a)) == len(constant_buffers(b))
    signature_a, signature_b = a.signatureDefs[0], b.signatureDefs[0]
    assert signature_a.signatureKey == signature_b.signatureKey
    for side in ("inputs", "outputs"):
        maps_a, maps_b = getattr(signature_a, side), getattr(signature_b, side)
        assert [m.name for m in maps_a] == [m.name for m in maps_b]
        assert [pairs[m.tensorIndex] for m in maps_a] == [m.tensorIndex for m in maps_b]
    assert_same_metadata(read_metadata(assembled), read_metadata(converted))
    # Weights are read in place (mmap): each buffer at least as aligned as its elements.
    assert all(offset % 4 == 0 for offset in buffer_offsets(assembled))


def buffer_offsets(data: bytes) -> list[int]:
    model = schema.Model.GetRootAs(data, 0)
    offsets = []
    for i in range(model.BuffersLength()):
        if model.Buffers(i).DataLength():
            table = model.Buffers(i)._tab
            offsets.append(table.Vector(table.Offset(4)))
    return offsets


def constant_buffers(model: Any) -> set[int]:
    graph = model.subgraphs[0]
    return {t.buffer for t in graph.tensors if model.buffers[t.buffer].data is not None}


def assert_same_metadata(a: dict[bytes, bytes], b: dict[bytes, bytes]) -> None:
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as conversion

    assert a.keys() == b.keys()
    assert a[MIN_RUNTIME_VERSION] == b[MIN_RUNTIME_VERSION]
    meta_a, meta_b = (
        conversion.ConversionMetadataT.InitFromPackedBuf(m[CONVERSION_METADATA], 0) for m in (a, b)
    )
    # The environment's model hash is a hash of the converted graph; everything else agrees.
    meta_a.environment.modelHash = meta_b.environment.modelHash = 0
    assert plain(meta_a) == plain(meta_b)


def assert_same_outputs(assembled: bytes, converted: bytes, shape: tuple[int, ...]) -> None:
    inputs = [sample_input(shape, seed) for seed in range(3)]
    for x in inputs:
        np.testing.assert_array_equal(run_float(assembled, x), run_float(converted, x))


# -- assembled = converted ------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("keys", NETWORKS)
def test_assembled_network_is_the_converted_network(
    keys: tuple[LayerKey, ...], precision: str, export_cache: Path
) -> None:
    assembled = export_keys(keys, "tflite", precision, cache_dir=export_cache)
    converted = export_keys(keys, "tflite", precision, cache_dir=export_cache, method="convert")
    assert assembled != converted
    assert_same_model(assembled.read_bytes(), converted.read_bytes())
    assert_same_outputs(assembled.read_bytes(), converted.read_bytes(), keys[0].input_shape_nhwc)
    # What the runtime executes, as it reports it.
    assert operator_names(assembled) == operator_names(converted)
    interpreter = load_interpreter(assembled)
    dtype = np.int8 if precision == "int8" else np.float32
    assert interpreter.get_input_details()[0]["dtype"] == dtype
    assert interpreter.get_output_details()[0]["dtype"] == dtype


@pytest.mark.parametrize(
    ("name", "resolution"),
    [
        ("ofa_mbv3_d234_e346_k357_w1.0", 160),
        ("ofa_proxyless_d234_e346_k357_w1.3", 160),
        ("figs-mbv2-224", 224),
    ],
)
def test_a_sampled_spec_file_network_is_joined_from_its_layers_and_runs(
    name: str, resolution: int, export_cache: Path
) -> None:
    """A whole network of OFA's and FiGS' spaces, as agents time it: its layer files
    converted once, then joined (no whole-network conversion), and run in LiteRT."""
    from models.keras_blocks import build_keras_network

    space = spec_file_space(name)
    arch = space.sample(1, seed=11)[0]
    if len(space.resolutions) > 1:
        arch[0] = space.resolutions.index(resolution)
    keys = space.network(arch)
    blocks = [k for k in keys if k.op is not Op.SKIP]
    path = export_keys(keys, "tflite", cache_dir=export_cache)
    assert '"method": "assemble"' in path.with_suffix(".json").read_text()
    x = sample_input((1, resolution, resolution, 3))
    got = run_float(path, x)
    assert got.shape == (1, 1000)
    assert np.isfinite(got).all()
    expected = np.asarray(build_keras_network(keys)(x))
    # Random BN statistics through 20-odd layers leave scores in the thousands (h-swish is
    # unbounded), and TensorFlow's and LiteRT's kernels round differently at every layer:
    # judged against that scale. (Joined = converted exactly is test_assembled_network_...)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    ops = Counter(operator_names(path))
    mbconvs = [k for k in blocks if k.op is Op.MBCONV]
    assert ops["DEPTHWISE_CONV_2D"] == len(mbconvs)
    # SE pooling, then the head's own global pool (MobileNetV3) and the classifier's.
    assert ops["MEAN"] == sum(k.se for k in mbconvs) + sum(
        k.op in (Op.POOL, Op.LOGITS) for k in blocks
    )
    assert ops["LOGISTIC"] == 0  # OFA's SE gates by h_sigmoid, no SE here gates by sigmoid
    assert ops["ADD"] == sum(k.has_residual for k in mbconvs)


def test_joining_has_no_tensorflow_in_it(export_cache: Path) -> None:
    """With every layer cached, an fp32 network is joined without importing TensorFlow."""
    keys = get_space("tiny-64").network([1, 0, 3, 2])
    for key in keys:
        export_layer(key, "tflite", cache_dir=export_cache)
    program = (
        "import sys\n"
        "from models.export import export_keys\n"
        "from models.spaces import get_space\n"
        "path = export_keys(get_space('tiny-64').network([1, 0, 3, 2]), 'tflite')\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = sorted(loaded & {'tensorflow', 'keras', 'torch'})\n"
        "print(path.stat().st_size, heavy)\n"
    )
    env = {**os.environ, "HWLAT_CACHE_DIR": str(export_cache)}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    size, heavy = done.stdout.split(maxsplit=1)
    assert int(size) > 0
    assert heavy.strip() == "[]"


# -- chains that do not fit -----------------------------------------------------------------

TINY = blocks_of("tiny-64", (0, 1, 2, 3))


def test_a_shape_mismatch_names_the_join(export_cache: Path) -> None:
    layers = layer_bytes([TINY[0], TINY[2]], export_cache)  # 32x32x16 into a 32x32x8 input
    labels = [str(TINY[0]), str(TINY[2])]
    with pytest.raises(AssemblyError, match=r"join 1 \(conv_hw64_i3_o16_k3_s2 -> .*shape"):
        join_tflite(layers, labels)


def test_mixed_precisions_do_not_join(export_cache: Path) -> None:
    fp32, int8 = (
        layer_bytes(TINY[:1], export_cache)[0],
        layer_bytes(TINY[1:2], export_cache, "int8")[0],
    )
    with pytest.raises(AssemblyError, match="output is float32 but the next layer takes int8"):
        join_tflite([fp32, int8])


def test_separately_calibrated_int8_layers_do_not_join(export_cache: Path) -> None:
    layers = layer_bytes(TINY[:2], export_cache, "int8")
    with pytest.raises(AssemblyError, match=r"quantised as scale .* expects scale .*quantize_int8"):
        join_tflite(layers)


def test_what_is_not_a_layer_file_is_refused(export_cache: Path) -> None:
    with pytest.raises(AssemblyError, match="no layer files"):
        join_tflite([])
    with pytest.raises(AssemblyError, match="not a TFLite flatbuffer"):
        join_tflite([b"ONNX, not TFLite"])
    good = layer_bytes(TINY[:1], export_cache)[0]
    with pytest.raises(AssemblyError, match="2 labels for 1 layer files"):
        join_tflite([good], ["a", "b"])


def test_a_wrong_file_in_the_cache_is_caught(export_cache: Path, tmp_path: Path) -> None:
    """A layer file that is not its key's layer cannot slip into a network."""
    import shutil

    keys = blocks_of("tiny-64", (0, 0, 0, 0))
    # The network's layer files, and nothing else, in a cache of the test's own.
    (tmp_path / "cache" / "exports").mkdir(parents=True)
    for key in keys:
        layer = export_layer(key, "tflite", cache_dir=export_cache)
        for path in (layer, layer.with_suffix(".json")):
            shutil.copy(path, tmp_path / "cache" / "exports" / path.name)
    # The classifier's file replaced by one of the same input but 1000 classes.
    other = export_layer("logits_hw8_i128_c1000", "tflite", cache_dir=export_cache)
    head = export_layer(keys[-1], "tflite", cache_dir=tmp_path / "cache")
    head.write_bytes(other.read_bytes())
    with pytest.raises(AssemblyError, match=r"maps .* to \(1, 1000\).*delete it and export again"):
        export_keys(keys, "tflite", cache_dir=tmp_path / "cache")


# -- the cache ------------------------------------------------------------------------------


def test_assembled_and_converted_files_never_mix(export_cache: Path) -> None:
    keys = get_space("tiny-64").network([0, 1, 2, 3])
    assembled = export_keys(keys, "tflite", cache_dir=export_cache)
    converted = export_keys(keys, "tflite", cache_dir=export_cache, method=ExportMethod.CONVERT)
    assert assembled.name != converted.name
    described = {p: (p.with_suffix(".json")).read_text() for p in (assembled, converted)}
    assert '"method": "assemble"' in described[assembled]
    assert '"assembler"' in described[assembled]
    assert '"method": "convert"' in described[converted]
    assert export_keys(keys, "tflite", cache_dir=export_cache, method="assemble") == assembled


def test_export_specs_converts_shared_layers_once_then_joins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.export import converters

    space = get_space("tiny-64")
    archs = [(0, 1, 2, 3), (0, 1, 2, 0), (3, 4, 1, 2)]
    specs = [ExportSpec.network(space.network(a), "tflite", "fp32") for a in archs]
    converted: list[str] = []
    real_convert = converters.convert

    def counting_convert(spec: ExportSpec, out: Path) -> None:
        converted.append(spec.label)
        real_convert(spec, out)

    monkeypatch.setattr(converters, "convert", counting_convert)
    paths = export_specs(specs, workers=1, progress=False, cache_dir=tmp_path)
    layers = {k for spec in specs for k in spec.keys}
    assert sorted(converted) == sorted(str(k) for k in layers)  # each layer once, no network
    for spec, path in paths.items():
        interpreter = load_interpreter(path)
        assert run_float(interpreter, sample_input(spec.input_shape_nhwc)).shape == (1, 10)
