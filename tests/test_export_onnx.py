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
from models.export import export_layer, export_network
from models.layer_key import Op, parse
from models.spaces import get_space
from models.torch_blocks import build_torch_layer, build_torch_network

KEYS = [
    "mbconv_hw16_i16_o24_k5_e6_s2",
    "mbconv_hw16_i24_o24_k3_e3_s1",
    "mbconv_hw16_i24_o24_k3_e6_s1_se",
    "mbconv_hw15_i16_o24_k3_e3_s2_se",
    "mbconv_hw8_i24_o24_k5_e6_s1_hswish",
    "conv_hw64_i3_o16_k3_s2",
    "head_hw8_i32_o128_c10",
    "logits_hw8_i128_c10",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


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
def test_onnx_runtime_output_equals_torch(text: str, cache_dir: Path) -> None:
    key = parse(text)
    x = nchw_input(key.input_shape_nhwc)
    with torch.no_grad():
        expected = build_torch_layer(key)(torch.from_numpy(x)).numpy()
    got = run_onnx(export_layer(key, "onnx", cache_dir=cache_dir), x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("text", KEYS)
def test_onnx_graph_holds_the_block(text: str, cache_dir: Path) -> None:
    key = parse(text)
    graph = onnx.load(str(export_layer(key, "onnx", cache_dir=cache_dir))).graph
    ops = Counter(node.op_type for node in graph.node)
    if key.op is Op.MBCONV:
        assert ops["Conv"] == (key.expansion > 1) + 1 + 1 + 2 * key.se
        assert ("Add" in ops) == key.has_residual
        assert ("Sigmoid" in ops) == key.se
    elif key.op is Op.HEAD:
        assert ops["Conv"] == 1
        assert ops["Gemm"] == 1
    elif key.op is Op.LOGITS:
        assert "Conv" not in ops
        assert ops["GlobalAveragePool"] + ops["ReduceMean"] == 1
        assert ops["Gemm"] == 1
    else:
        assert ops["Conv"] == 1
    # BN is folded into the convolutions by the exporter's constant folding in eval mode.
    assert "BatchNormalization" not in ops


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", ["mbconv_hw16_i24_o24_k3_e6_s1_se", "head_hw8_i32_o128_c10", "logits_hw8_i128_c10"]
)
def test_int8_onnx_runs_and_stays_close_to_fp32(text: str, cache_dir: Path) -> None:
    key = parse(text)
    x = nchw_input(key.input_shape_nhwc)
    int8_path = export_layer(key, "onnx", "int8", cache_dir=cache_dir)
    fp32_path = export_layer(key, "onnx", "fp32", cache_dir=cache_dir)
    assert int8_path != fp32_path
    ops = Counter(node.op_type for node in onnx.load(str(int8_path)).graph.node)
    assert ops["QuantizeLinear"] > 0
    assert ops["DequantizeLinear"] > 0
    reference, quantised = run_onnx(fp32_path, x), run_onnx(int8_path, x)
    assert np.abs(quantised - reference).mean() / reference.std() < 0.1
    assert np.corrcoef(quantised.ravel(), reference.ravel())[0, 1] > 0.98


def test_onnx_network_runs_with_classes_output(cache_dir: Path) -> None:
    space = get_space("tiny-64")
    arch = [3, 4, 1, 2]
    x = sample_input((1, 3, 64, 64))
    got = run_onnx(export_network(space, arch, "onnx", cache_dir=cache_dir), x)
    with torch.no_grad():
        expected = build_torch_network(space.network(arch))(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
