"""torch -> ONNX export: ONNX Runtime computes what the torch module computes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models.blocks import sample_input
from models.export import ExportSpec, export_layer, export_network
from models.export import spec as spec_module
from models.export.spec import ONNX_INT8_SETTINGS
from models.layer_key import Op, parse
from models.spaces import get_space
from models.torch_blocks import build_torch_layer, build_torch_network
from tests.emulated_cpu import (
    ABSENT_FEATURES,
    NO_VNNI_CPUS,
    REQUIRED_FEATURES,
    host_has_vnni,
    run_onnx_on,
)
from tests.fixtures.factories import spec_file_space

KEYS = [
    "mbconv_hw16_i16_o24_k5_e6_s2",
    "mbconv_hw16_i24_o24_k3_e3_s1",
    "mbconv_hw16_i24_o24_k3_e6_s1_se",
    "mbconv_hw15_i16_o24_k3_e3_s2_se",
    "mbconv_hw8_i24_o24_k5_e6_s1_hswish",
    "conv_hw64_i3_o16_k3_s2",
    "head_hw8_i32_o128_c10",
    "logits_hw8_i128_c10",
    # OFA MobileNetV3's: SE on the expanded channels (sem), the head's pool, 1x1 conv, logits.
    "mbconv_hw16_i24_o40_k5_e3_s2_sem_hswish",
    "mbconv_hw8_i40_o40_k3_e4_s1_sem_relu",
    "pool_hw7_i96",
    "conv_hw1_i96_o128_k1_s1_hswish",
    "logits_hw1_i128_c10",
]


def nchw_input(shape_nhwc: tuple[int, ...]) -> np.ndarray:
    n, h, w, c = shape_nhwc
    return sample_input((n, c, h, w))


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT warns about the exporter's unused Clip constants
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x})
    return np.asarray(out)


@pytest.mark.parametrize("text", KEYS)
def test_onnx_runtime_output_equals_torch(text: str, export_cache: Path) -> None:
    key = parse(text)
    x = nchw_input(key.input_shape_nhwc)
    with torch.no_grad():
        expected = build_torch_layer(key)(torch.from_numpy(x)).numpy()
    got = run_onnx(export_layer(key, "onnx", cache_dir=export_cache), x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("text", KEYS)
def test_onnx_graph_holds_the_block(text: str, export_cache: Path) -> None:
    key = parse(text)
    graph = onnx.load(str(export_layer(key, "onnx", cache_dir=export_cache))).graph
    ops = Counter(node.op_type for node in graph.node)
    if key.op is Op.MBCONV:
        assert ops["Conv"] == (key.expansion > 1) + 1 + 1 + 2 * key.se
        assert ("Add" in ops) == key.has_residual
        assert ("Sigmoid" in ops) == (key.se and not key.se_mid)
        assert ops["HardSigmoid"] == key.se_mid  # OFA's h_sigmoid gate
    elif key.op is Op.HEAD:
        assert ops["Conv"] == 1
        assert ops["Gemm"] == 1
    elif key.op is Op.LOGITS:
        assert "Conv" not in ops
        assert ops["GlobalAveragePool"] + ops["ReduceMean"] == 1
        assert ops["Gemm"] == 1
    elif key.op is Op.POOL:
        assert ops == Counter({"GlobalAveragePool": 1})
    else:
        assert ops["Conv"] == 1
    # BN is folded into the convolutions by the exporter's constant folding in eval mode.
    assert "BatchNormalization" not in ops


INT8_KEYS = ["mbconv_hw16_i24_o24_k3_e6_s1_se", "head_hw8_i32_o128_c10", "logits_hw8_i128_c10"]


def assert_close_to_fp32(quantised: np.ndarray, reference: np.ndarray) -> None:
    assert np.abs(quantised - reference).mean() / reference.std() < 0.1
    assert np.corrcoef(quantised.ravel(), reference.ravel())[0, 1] > 0.98


@pytest.mark.slow
@pytest.mark.parametrize("text", INT8_KEYS)
def test_int8_onnx_runs_and_stays_close_to_fp32(text: str, export_cache: Path) -> None:
    key = parse(text)
    x = nchw_input(key.input_shape_nhwc)
    int8_path = export_layer(key, "onnx", "int8", cache_dir=export_cache)
    fp32_path = export_layer(key, "onnx", "fp32", cache_dir=export_cache)
    assert int8_path != fp32_path
    ops = Counter(node.op_type for node in onnx.load(str(int8_path)).graph.node)
    assert ops["QuantizeLinear"] > 0
    assert ops["DequantizeLinear"] > 0
    assert_close_to_fp32(run_onnx(int8_path, x), run_onnx(fp32_path, x))


def eight_bit_weights(fp32_path: Path, out: Path, shape: tuple[int, ...]) -> Path:
    """The layer quantised as hwlat exported int8 ONNX before: 8-bit weights."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from models.export.converters import calibration_inputs

    samples = calibration_inputs(shape)

    class Reader:
        def get_next(self) -> dict[str, np.ndarray] | None:
            sample = next(samples, None)
            return None if sample is None else {"input": sample}

    quantize_static(
        str(fp32_path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=False,
    )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("cpu", NO_VNNI_CPUS)
def test_int8_onnx_stays_close_to_fp32_on_cpus_without_vnni(
    cpu: str, export_cache: Path, tmp_path: Path
) -> None:
    """The same files on an x86 CPU with AVX2 only: the same strict bound, and the very same
    numbers as on this machine, since 7-bit weights cannot saturate the u8 x s8 kernel.

    The head quantised with 8-bit weights (the earlier export) runs beside them: on this CPU it
    misses the bound, so the emulation reproduces the fault and the test would catch a return
    to 8-bit weights."""
    keys = [parse(text) for text in INT8_KEYS]
    inputs = [nchw_input(key.input_shape_nhwc) for key in keys]
    int8 = [export_layer(key, "onnx", "int8", cache_dir=export_cache) for key in keys]
    fp32 = [export_layer(key, "onnx", "fp32", cache_dir=export_cache) for key in keys]
    head = INT8_KEYS.index("head_hw8_i32_o128_c10")
    old_head = eight_bit_weights(fp32[head], tmp_path / "head-8bit.onnx", inputs[head].shape)
    runs = [*zip(int8, inputs, strict=True), (old_head, inputs[head])]
    outputs, features = run_onnx_on(cpu, runs, tmp_path)
    *emulated, emulated_old_head = outputs
    assert all(features[f] for f in REQUIRED_FEATURES), features
    assert not any(features.get(f, False) for f in ABSENT_FEATURES), features
    for key, path, x, fp32_path, quantised in zip(keys, int8, inputs, fp32, emulated, strict=True):
        reference = run_onnx(fp32_path, x)
        assert_close_to_fp32(quantised, reference)
        np.testing.assert_array_equal(quantised, run_onnx(path, x), err_msg=str(key))
    reference = run_onnx(fp32[head], inputs[head])
    assert np.abs(emulated_old_head - reference).mean() / reference.std() > 0.1
    # A host with VNNI runs the 8-bit head with other kernels (and does not saturate); a host
    # without it is one of these CPUs, and computes what the emulation computes.
    native = run_onnx(old_head, inputs[head])
    assert np.array_equal(emulated_old_head, native) is not host_has_vnni()


def test_the_int8_settings_are_part_of_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file quantised with other settings has another name, so it is never served."""
    spec = ExportSpec.layer(parse(INT8_KEYS[1]), "onnx", "int8")
    assert spec.describe()["quantization"] == ONNX_INT8_SETTINGS
    assert "quantization" not in ExportSpec.layer(parse(INT8_KEYS[1]), "onnx", "fp32").describe()
    before = spec.digest()
    monkeypatch.setitem(spec_module.ONNX_INT8_SETTINGS, "reduce_range", False)
    assert spec.digest() != before


def test_onnx_network_runs_with_classes_output(export_cache: Path) -> None:
    space = get_space("tiny-64")
    arch = [3, 4, 1, 2]
    x = sample_input((1, 3, 64, 64))
    got = run_onnx(export_network(space, arch, "onnx", cache_dir=export_cache), x)
    with torch.no_grad():
        expected = build_torch_network(space.network(arch))(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name", ["ofa_mbv3_d234_e346_k357_w1.0", "ofa_proxyless_d234_e346_k357_w1.3"]
)
def test_a_sampled_ofa_network_runs_in_onnx_runtime(name: str, export_cache: Path) -> None:
    """Whole networks of the elastic spec-file spaces at 128 (OFA's smallest resolution)."""
    space = spec_file_space(name)
    arch = space.sample(1, seed=2)[0]
    arch[0] = space.resolutions.index(128)
    keys = space.network(arch)
    x = sample_input((1, 3, 128, 128))
    path = export_network(space, arch, "onnx", cache_dir=export_cache)
    got = run_onnx(path, x)
    with torch.no_grad():
        expected = build_torch_network(keys)(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 1000)
    # Random BN statistics through 20-odd unbounded (h-swish) layers leave scores in the
    # hundreds: float rounding is judged against that scale.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    ops = Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    blocks = [k for k in keys if k.op is Op.MBCONV]
    assert ops["HardSigmoid"] == sum(k.se_mid for k in blocks)
    # SE pooling, the head's own pool (MobileNetV3), the classifier's.
    pools = sum(k.se for k in blocks) + sum(k.op in (Op.POOL, Op.LOGITS) for k in keys)
    assert ops["GlobalAveragePool"] == pools
