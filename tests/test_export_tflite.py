"""Keras -> TFLite export: the files run in LiteRT, hold the expected operators, and compute
what the Keras model computes (fp32 tightly, int8 after dequantisation loosely)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from models.blocks import sample_input
from models.export import export_layer, export_network
from models.layer_key import Activation, LayerKey, Op, parse
from models.spaces import get_space
from models.tflite_inspect import load_interpreter, operator_names, run_float

pytestmark = pytest.mark.slow

KEYS = [
    "mbconv_hw16_i16_o24_k5_e6_s2",
    "mbconv_hw16_i24_o24_k3_e3_s1",
    "mbconv_hw16_i24_o24_k3_e6_s1_se",
    "mbconv_hw15_i16_o24_k3_e3_s2_se",
    "mbconv_hw32_i16_o8_k3_e1_s1",
    "conv_hw64_i3_o16_k3_s2",
    "head_hw8_i32_o128_c10",
    "conv_hw8_i32_o128_k1_s1",
    "logits_hw8_i128_c10",
    # OFA MobileNetV3's: SE on the expanded channels gated by h_sigmoid (sem), the head's
    # global pool, its 1x1 feature-mix conv at 1x1 and the classifier after it.
    "mbconv_hw16_i24_o40_k5_e3_s2_sem_hswish",
    "mbconv_hw8_i40_o40_k3_e4_s1_sem_relu",
    "pool_hw7_i96",
    "conv_hw1_i96_o128_k1_s1_hswish",
    "logits_hw1_i128_c10",
]
INT8_KEYS = [
    "mbconv_hw16_i24_o24_k3_e6_s1_se",
    "conv_hw64_i3_o16_k3_s2",
    "head_hw8_i32_o128_c10",
    "logits_hw8_i128_c10",
    "mbconv_hw8_i40_o40_k3_e4_s1_sem_relu",
    "pool_hw7_i96",
]
SE_OPS = {"MEAN", "LOGISTIC", "MUL"}
# OFA's h_sigmoid gate, relu6(x + 3) / 6: the converter folds the shift into the expand
# conv's bias and fuses the clip into it, leaving a MUL for the scale beside the gate's MUL.
SEM_OPS = Counter({"MEAN": 1, "MUL": 2})


def exported(key: str, export_cache: Path, precision: str = "fp32") -> Path:
    # The cache makes repeated calls across tests free.
    return export_layer(key, "tflite", precision, cache_dir=export_cache)


@pytest.mark.parametrize("text", KEYS)
def test_runs_in_litert_with_the_layer_output_shape(text: str, export_cache: Path) -> None:
    key = parse(text)
    interpreter = load_interpreter(exported(text, export_cache))
    (inp,) = interpreter.get_input_details()
    assert tuple(inp["shape"]) == key.input_shape_nhwc
    y = run_float(interpreter, sample_input(key.input_shape_nhwc))
    assert y.shape == key.output_shape_nhwc
    assert np.isfinite(y).all()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_file_carries_a_keras_models_signature(precision: str, export_cache: Path) -> None:
    """As a Keras model's file does: runtimes' signature runners find it and compute the same."""
    key = parse(KEYS[0])
    interpreter = load_interpreter(exported(KEYS[0], export_cache, precision))
    signatures = interpreter.get_signature_list()
    assert signatures == {"serving_default": {"inputs": ["input"], "outputs": ["output_0"]}}
    (inp,) = interpreter.get_input_details()
    x = np.zeros(key.input_shape_nhwc, dtype=inp["dtype"])
    by_signature = interpreter.get_signature_runner("serving_default")(input=x)["output_0"]
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    by_index = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_array_equal(by_signature, by_index)


def expected_op_counts(key: LayerKey) -> Counter[str]:
    # h-swish is an operator of its own; ReLU and ReLU6 fold into the conv before them.
    hswish = key.act is Activation.HSWISH
    if key.op is Op.CONV:
        return Counter({"CONV_2D": 1, "HARD_SWISH": hswish})
    if key.op is Op.HEAD:
        return Counter({"CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1, "HARD_SWISH": hswish})
    if key.op is Op.LOGITS:
        return Counter({"MEAN": 1, "FULLY_CONNECTED": 1})
    if key.op is Op.POOL:
        return Counter({"MEAN": 1})
    # expand (if any) + project, plus the two 1x1 convs of SE; BN and ReLU6 fold into them.
    convs = (key.expansion > 1) + 1 + 2 * key.se
    counts = Counter({"CONV_2D": convs, "DEPTHWISE_CONV_2D": 1})
    counts["HARD_SWISH"] = hswish * ((key.expansion > 1) + 1)
    if key.se:
        counts.update(SEM_OPS if key.se_mid else SE_OPS)
    if key.has_residual:
        counts["ADD"] = 1
    return +counts  # without the zero counts


@pytest.mark.parametrize("text", KEYS)
def test_holds_the_expected_operators(text: str, export_cache: Path) -> None:
    key = parse(text)
    ops = operator_names(exported(text, export_cache))
    assert Counter(ops) == expected_op_counts(key)
    if key.op is Op.MBCONV:
        assert ("ADD" in ops) == key.has_residual
        if key.se:
            assert ("LOGISTIC" in ops) == (not key.se_mid)  # h_sigmoid is no sigmoid
        assert set(ops) >= {"MEAN", "MUL"} if key.se else not SE_OPS & set(ops)


@pytest.mark.parametrize("text", KEYS)
def test_fp32_output_equals_the_keras_model(text: str, export_cache: Path) -> None:
    from models.keras_blocks import build_keras_layer

    key = parse(text)
    x = sample_input(key.input_shape_nhwc)
    expected = np.asarray(build_keras_layer(key)(x))
    got = run_float(exported(text, export_cache), x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("text", INT8_KEYS)
def test_int8_runs_on_int8_input_and_stays_close_to_fp32(text: str, export_cache: Path) -> None:
    key = parse(text)
    interpreter = load_interpreter(exported(text, export_cache, "int8"))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8
    assert out["dtype"] == np.int8
    assert inp["quantization"][0] > 0  # a real scale, not the float placeholder
    x = sample_input(key.input_shape_nhwc)
    reference = run_float(exported(text, export_cache), x)
    quantised = run_float(interpreter, x)
    assert quantised.shape == reference.shape
    relative_error = np.abs(quantised - reference).mean() / reference.std()
    assert relative_error < 0.1
    assert np.corrcoef(quantised.ravel(), reference.ravel())[0, 1] > 0.98
    # Full-integer: the convolutions really run in int8.
    assert Counter(operator_names(exported(text, export_cache, "int8"))) == expected_op_counts(key)


def test_int8_and_fp32_are_different_files(export_cache: Path) -> None:
    text = INT8_KEYS[0]
    fp32, int8 = exported(text, export_cache), exported(text, export_cache, "int8")
    assert fp32 != int8
    assert int8.stat().st_size < fp32.stat().st_size


def test_network_exports_and_matches_keras(export_cache: Path) -> None:
    from models.keras_blocks import build_keras_network

    space = get_space("tiny-64")
    arch = [3, 4, 1, 2]  # layer 1 skipped
    path = export_network(space, arch, "tflite", cache_dir=export_cache)
    x = sample_input((1, 64, 64, 3))
    got = run_float(path, x)
    assert got.shape == (1, 10)
    keys = space.network(arch)
    np.testing.assert_allclose(got, np.asarray(build_keras_network(keys)(x)), rtol=1e-4, atol=1e-4)
    blocks = sum(k.op is Op.MBCONV for k in keys)
    assert Counter(operator_names(path))["DEPTHWISE_CONV_2D"] == blocks
    # The same architecture again is the same file; another choice is another file.
    assert export_network(space, arch, "tflite", cache_dir=export_cache) == path
    assert export_network(space, [3, 0, 1, 2], "tflite", cache_dir=export_cache) != path


def test_int8_network_runs_with_int8_io(export_cache: Path) -> None:
    path = export_network(
        get_space("tiny-64"), [0, 4, 2, 3], "tflite", "int8", cache_dir=export_cache
    )
    interpreter = load_interpreter(path)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert run_float(interpreter, sample_input((1, 64, 64, 3))).shape == (1, 10)
