"""The converters: Keras -> TFLite and torch -> ONNX, fp32 or int8.

int8 means full-integer post-training quantisation calibrated on a seeded random dataset:
- TFLite: ``TFLITE_BUILTINS_INT8`` only, int8 input and output tensors (what an int8 model on a
  phone's CPU or NPU runs). :func:`quantize_int8` applies the same quantisation to a float
  flatbuffer, which is how an assembled int8 network is made.
- ONNX: onnxruntime's static quantisation in QDQ form, int8 activations and 7-bit int8
  weights per channel (``ONNX_INT8_SETTINGS`` says why 7); the graph's input and output stay
  float, with Quantize/DequantizeLinear at the edges, as ONNX Runtime expects.

Heavy imports happen inside the functions, so that only a process that converts pays for them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.blocks import sample_input
from models.export.spec import (
    CALIBRATION_SAMPLES,
    ONNX_INT8_SETTINGS,
    ONNX_OPSET,
    ExportFormat,
    ExportSpec,
)
from models.precision import Precision

# Seeds of the calibration inputs; distinct from the seed-0 input the tests compare on.
_CALIBRATION_SEED_BASE = 1000


class ConversionError(RuntimeError):
    """The converter rejected a model; the message carries the tail of what it printed."""


def convert(spec: ExportSpec, out: Path) -> None:
    """Build the model of ``spec`` and write the converted file to ``out``."""
    if spec.fmt is ExportFormat.TFLITE:
        out.write_bytes(tflite_bytes(spec))
    else:
        write_onnx(spec, out)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ and Python logging; must run before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN only announces itself here; conversion does not run TF kernels that it would speed up.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def calibration_inputs(shape: tuple[int, ...]) -> Iterator[npt.NDArray[np.float32]]:
    for i in range(CALIBRATION_SAMPLES):
        yield sample_input(shape, seed=_CALIBRATION_SEED_BASE + i)


def build_keras(spec: ExportSpec) -> Any:
    quiet_tensorflow()
    from models.keras_blocks import build_keras_layer, build_keras_network

    if spec.kind == "layer":
        return build_keras_layer(spec.keys[0])
    return build_keras_network(spec.keys)


def tflite_bytes(spec: ExportSpec) -> bytes:
    """The TFLite file of ``spec``'s Keras model.

    Converted from the model's call, traced once and frozen (weights as constants), with the
    signature a Keras model's file carries added: the same operators, tensors and outputs as
    ``TFLiteConverter.from_keras_model``, which first writes and reads back a SavedModel and so
    takes three times as long (0.5 s against 0.15 s for a layer here).
    """
    quiet_tensorflow()
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from models.export import assemble

    tf.get_logger().setLevel(logging.ERROR)
    model = build_keras(spec)
    call = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(spec.input_shape_nhwc, tf.float32, name="input")
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [convert_variables_to_constants_v2(call)]
    )
    if spec.precision is Precision.INT8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(spec.input_shape_nhwc)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with _converter_output(f"TFLite {spec.precision.value} conversion of {spec.label}"):
        data: bytes = converter.convert()
    return assemble.with_signature(data)


def _representative(
    shape: tuple[int, ...],
) -> Callable[[], Iterator[list[npt.NDArray[np.float32]]]]:
    """The converter's representative dataset: the seeded calibration inputs, one per call."""

    def representative() -> Iterator[list[npt.NDArray[np.float32]]]:
        for sample in calibration_inputs(shape):
            yield [sample]

    return representative


def quantize_int8(fp32_model: bytes, input_shape: tuple[int, ...], label: str) -> bytes:
    """The full-integer int8 model the converter makes, computed from its fp32 model.

    These are the last stages of ``TFLiteConverter.convert`` with the settings of
    :func:`tflite_bytes` (``_quantize`` and buffer deduplication in ``tensorflow.lite.python
    .lite``): calibration of the float flatbuffer on the same seeded representative dataset,
    TensorFlow Lite's MLIR post-training quantiser with int8 input and output, then the
    deduplication of read-only buffers. Given the float model the converter would calibrate,
    the result is the converter's int8 model, tensor for tensor. The two functions are internal
    to TensorFlow; the cache key records its version, and the tests compare the result with a
    whole-network conversion.
    """
    quiet_tensorflow()
    import tensorflow as tf
    from tensorflow.lite.python import convert as tf_convert
    from tensorflow.lite.python.optimize import calibrator

    tf.get_logger().setLevel(logging.ERROR)
    with _converter_output(f"TFLite int8 quantisation of {label}"):
        calibrated = calibrator.Calibrator(fp32_model).calibrate(_representative(input_shape))
        quantized = tf_convert.mlir_quantize(
            calibrated,
            disable_per_channel=False,
            input_data_type=tf.int8,
            output_data_type=tf.int8,
        )
        data: bytes = tf_convert.deduplicate_readonly_buffers(quantized)
    return data


def int8_conversion_metadata(fp32_metadata: bytes) -> bytes:
    """The converter's CONVERSION_METADATA of an int8 model, from that of its fp32 model.

    The converter records full-integer post-training quantisation as an optimisation mode.
    """
    quiet_tensorflow()
    import flatbuffers
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as schema

    metadata = schema.ConversionMetadataT.InitFromPackedBuf(fp32_metadata, 0)
    if metadata.options is None:
        metadata.options = schema.ConversionOptionsT()
    metadata.options.modelOptimizationModes = [schema.ModelOptimizationMode.PTQ_FULL_INTEGER]
    builder = flatbuffers.Builder(len(fp32_metadata) + 64)
    builder.Finish(metadata.Pack(builder))
    return bytes(builder.Output())


def input_shape_nchw(spec: ExportSpec) -> tuple[int, int, int, int]:
    n, h, w, c = spec.input_shape_nhwc
    return (n, c, h, w)


def write_onnx(spec: ExportSpec, out: Path) -> None:
    import torch

    from models.torch_blocks import build_torch_layer, build_torch_network

    module = (
        build_torch_layer(spec.keys[0]) if spec.kind == "layer" else build_torch_network(spec.keys)
    )
    example = torch.from_numpy(sample_input(input_shape_nchw(spec)))
    fp32_path = out
    with contextlib.ExitStack() as stack:
        if spec.precision is Precision.INT8:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(dir=out.parent))
            fp32_path = Path(scratch) / "fp32.onnx"
        with _converter_output(f"ONNX export of {spec.label}"):
            # The dynamo exporter needs onnxscript; the TorchScript one covers these plain blocks.
            torch.onnx.export(
                module,
                (example,),
                str(fp32_path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=["input"],
                output_names=["output"],
            )
        if spec.precision is Precision.INT8:
            _quantize_onnx(spec, fp32_path, out)


class _CalibrationReader:
    """The duck-typed ``CalibrationDataReader`` that onnxruntime's quantiser pulls from."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._samples = calibration_inputs(shape)

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        sample = next(self._samples, None)
        return None if sample is None else {"input": sample}

    def rewind(self) -> None:
        raise NotImplementedError("calibration runs once")


def _quantize_onnx(spec: ExportSpec, fp32_path: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    # Every setting is passed: the enums by name, the rest as they are.
    settings: dict[str, Any] = {
        **ONNX_INT8_SETTINGS,
        "quant_format": QuantFormat[str(ONNX_INT8_SETTINGS["quant_format"])],
        "activation_type": QuantType[str(ONNX_INT8_SETTINGS["activation_type"])],
        "weight_type": QuantType[str(ONNX_INT8_SETTINGS["weight_type"])],
    }
    with _converter_output(f"ONNX int8 quantisation of {spec.label}"):
        quantize_static(
            str(fp32_path), str(out), _CalibrationReader(input_shape_nchw(spec)), **settings
        )


@contextlib.contextmanager
def _converter_output(what: str) -> Iterator[None]:
    """Swallow what converters print (Python and native code); on failure, report its tail.

    TensorFlow's converter writes progress lines straight to file descriptors 1 and 2, which
    no Python-level redirect catches, and they would tear a progress bar apart.
    """
    python_output = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        try:
            with (
                _fds_redirected_to(sink.fileno()),
                contextlib.redirect_stdout(python_output),
                contextlib.redirect_stderr(python_output),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")
                yield
        except Exception as error:
            sink.seek(0)
            printed = python_output.getvalue() + sink.read().decode(errors="replace")
            tail = "\n".join(printed.strip().splitlines()[-20:])
            raise ConversionError(f"{what} failed: {error}\n{tail}".rstrip()) from error


@contextlib.contextmanager
def _fds_redirected_to(target_fd: int) -> Iterator[None]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd in saved:
            os.dup2(target_fd, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
