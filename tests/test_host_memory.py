"""Peak memory of real models on this host, each measured in a fresh process."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_agents.memory import PeakMemory, measure_peak_memory
from device_agents.runners import RuntimeOptions
from models import parse
from models.export import export_layer

pytestmark = pytest.mark.heavy

# Weights of 1.6 MB and activations of 40 kB; then weights of 23 kB and activations of 5 MB.
HEAVY_WEIGHTS = parse("conv_hw7_i320_o1280_k1_s1")
HEAVY_ACTIVATIONS = parse("mbconv_hw112_i16_o24_k3_e6_s2")
MB = 1 << 20


def peak(key: str, runtime: str, fmt: str, xnnpack: bool = True) -> PeakMemory:
    return measure_peak_memory(export_layer(key, fmt), runtime, RuntimeOptions(use_xnnpack=xnnpack))


@pytest.mark.parametrize(("runtime", "fmt"), [("litert", "tflite"), ("onnxruntime", "onnx")])
def test_the_peak_holds_the_weights_of_one_layer_and_the_activations_of_another(
    runtime: str, fmt: str
) -> None:
    weights = peak(str(HEAVY_WEIGHTS), runtime, fmt)
    assert weights.model_bytes > 1.5 * MB
    assert weights.peak_bytes >= weights.model_bytes
    activations = peak(str(HEAVY_ACTIVATIONS), runtime, fmt)
    assert activations.model_bytes < 0.1 * MB
    # Its expanded tensor alone is 112 x 112 x 96 floats (4.8 MB) before the stride-2 depthwise.
    expanded = HEAVY_ACTIVATIONS.hw**2 * HEAVY_ACTIVATIONS.mid * 4
    assert activations.peak_bytes >= 0.9 * expanded
    # The interpreter's own libraries are the baseline, not the model's.
    assert activations.baseline_bytes > 10 * MB
    assert "fresh process" in activations.method
    # Each measurement is a fresh process: a second one finds the same peak.
    again = peak(str(HEAVY_ACTIVATIONS), runtime, fmt)
    assert abs(again.peak_bytes - activations.peak_bytes) <= 0.05 * activations.peak_bytes


def test_xnnpack_adds_its_own_buffers_to_the_peak() -> None:
    with_xnnpack = peak(str(HEAVY_WEIGHTS), "litert", "tflite")
    builtin = peak(str(HEAVY_WEIGHTS), "litert", "tflite", xnnpack=False)
    assert with_xnnpack.peak_bytes > builtin.peak_bytes >= builtin.model_bytes


def test_a_file_that_is_no_model_is_refused_with_the_runtime_s_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(RuntimeError, match=r"peak memory of .*broken\.tflite failed"):
        measure_peak_memory(broken, "litert")
    with pytest.raises(FileNotFoundError, match="no model file"):
        measure_peak_memory(tmp_path / "missing.tflite", "litert")
