"""What an export is: the layers, the format and precision, and the cache name derived from them.

The cache name is a sha256 of a canonical JSON of everything that determines the file's bytes:
the layer keys, format, precision, how a network is made (:class:`ExportMethod`),
:data:`EXPORTER_VERSION`, the weights version and the versions of the converting and joining
libraries. Change any of them and the old file is simply not found; an assembled network and
a converted one never share a name.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Final, Literal

from models.blocks import WEIGHTS_VERSION, NothingToExport, network_blocks
from models.errors import UserInputError
from models.layer_key import LayerKey, Op
from models.precision import Precision

# Bump when a change here or in the builders alters exported files for the same inputs.
# 3: TFLite from the frozen traced call, not through a SavedModel (converter metadata and
# tensor names differ; operators and outputs do not).
EXPORTER_VERSION: Final = 3
ONNX_OPSET: Final = 17
# Samples of the seeded representative dataset used to calibrate int8 ranges.
CALIBRATION_SAMPLES: Final = 16
# How an int8 ONNX file is quantised (onnxruntime.quantization.quantize_static's arguments,
# by name). Part of the cache key: a file quantised otherwise is never served for these.
#
# reduce_range: weights use 7 bits. On x86 CPUs without VNNI (AVX2 or AVX-512 only, e.g. an
# AMD EPYC of the Zen 2/3 generations), ONNX Runtime's int8 GEMM multiplies u8 activations by
# s8 weights with VPMADDUBSW, which adds pairs of products into int16 and saturates; ONNX
# Runtime's quantisation guide names 7-bit weights (or U8U8) as the remedy. Measured on the
# head layer of the tests: mean error 0.108 std of the fp32 output with 8-bit weights on an
# AVX2-only CPU, 0.032 with VNNI; 0.039 on both with 7-bit weights, and bit-identical outputs
# on every x86 CPU tried (tests/test_export_onnx.py runs them under QEMU's CPU models). U8U8
# would also be exact, but runs another (slower) kernel than the S8S8 QDQ that ONNX Runtime
# recommends and deployments use; 7-bit weights keep the operators and kernels, so what hwlat
# times is what a deployment runs.
ONNX_INT8_SETTINGS: Final[dict[str, str | bool]] = {
    "quant_format": "QDQ",
    "activation_type": "QInt8",
    "weight_type": "QInt8",
    "per_channel": True,
    "reduce_range": True,
}


class ExportFormat(StrEnum):
    TFLITE = "tflite"
    ONNX = "onnx"

    @classmethod
    def parse(cls, value: str) -> ExportFormat:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise UserInputError(
                f"unknown export format {value!r}; expected one of {', '.join(cls)}"
            ) from None


class ExportMethod(StrEnum):
    """How a network's file is made (a layer's file is always converted)."""

    # The converter on the whole Keras (TFLite) or torch (ONNX) network: seconds per network.
    CONVERT = "convert"
    # The network's cached layer files joined (models.export.assemble): TFLite only.
    ASSEMBLE = "assemble"

    @classmethod
    def parse(cls, value: str) -> ExportMethod:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise UserInputError(
                f"unknown export method {value!r}; expected one of {', '.join(cls)}"
            ) from None


# (name recorded in the cache key, distributions that may provide it)
_CONVERTER_PACKAGES: Final[dict[ExportFormat, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    ExportFormat.TFLITE: (
        ("tensorflow", ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu")),
        ("keras", ("keras",)),
    ),
    ExportFormat.ONNX: (("torch", ("torch",)), ("onnx", ("onnx",))),
}
_ONNX_INT8_PACKAGES: Final = (("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),)
# The flatbuffer schema and writer that join layer files.
_ASSEMBLER_PACKAGES: Final = (
    ("ai-edge-litert", ("ai-edge-litert",)),
    ("flatbuffers", ("flatbuffers",)),
)


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """One file to export: a single layer, or a whole network of layers in order."""

    kind: Literal["layer", "network"]
    keys: tuple[LayerKey, ...]
    fmt: ExportFormat
    precision: Precision
    method: ExportMethod = ExportMethod.CONVERT

    def __post_init__(self) -> None:
        if self.kind == "layer" and self.method is not ExportMethod.CONVERT:
            raise ValueError("a layer file is converted; only networks are assembled")

    @classmethod
    def layer(
        cls, key: LayerKey, fmt: ExportFormat | str, precision: Precision | str
    ) -> ExportSpec:
        if key.op is Op.SKIP:
            raise NothingToExport(key)
        return cls("layer", (key,), ExportFormat.parse(fmt), Precision.parse(precision))

    @classmethod
    def network(
        cls,
        keys: Sequence[LayerKey],
        fmt: ExportFormat | str,
        precision: Precision | str,
        method: ExportMethod | str | None = None,
    ) -> ExportSpec:
        """A whole network; ``method`` defaults to assembling TFLite and converting ONNX."""
        fmt_ = ExportFormat.parse(fmt)
        if method is None:
            method_ = ExportMethod.ASSEMBLE if fmt_ is ExportFormat.TFLITE else ExportMethod.CONVERT
        else:
            method_ = ExportMethod.parse(method)
        if method_ is ExportMethod.ASSEMBLE and fmt_ is not ExportFormat.TFLITE:
            raise ValueError(
                f"{fmt_.value} networks cannot be assembled from layer files (only tflite "
                "can); use method='convert'"
            )
        # Skips are dropped before hashing: the file depends only on the layers that compute.
        blocks = network_blocks(keys)
        return cls("network", blocks, fmt_, Precision.parse(precision), method_)

    @property
    def assembled(self) -> bool:
        return self.method is ExportMethod.ASSEMBLE

    def layer_specs(self) -> tuple[ExportSpec, ...]:
        """The layer files an assembled network is joined from, in network order.

        fp32 layers for either precision: separately calibrated int8 layers do not chain, so
        an int8 network is the joined fp32 network quantised like the converter does it.
        """
        if not self.assembled:
            raise ValueError(f"{self.label} is converted whole, not assembled from layers")
        return tuple(ExportSpec.layer(k, self.fmt, Precision.FP32) for k in self.keys)

    @property
    def input_shape_nhwc(self) -> tuple[int, int, int, int]:
        return self.keys[0].input_shape_nhwc

    @property
    def output_shape_nhwc(self) -> tuple[int, ...]:
        return self.keys[-1].output_shape_nhwc

    @property
    def label(self) -> str:
        if self.kind == "layer":
            return str(self.keys[0])
        return f"network of {len(self.keys)} layers ({self.keys[0]} ... {self.keys[-1]})"

    def describe(self) -> dict[str, Any]:
        """Everything that determines the exported bytes, as JSON-ready data."""
        described: dict[str, Any] = {
            "kind": self.kind,
            "keys": [str(k) for k in self.keys],
            "format": self.fmt.value,
            "precision": self.precision.value,
            "exporter_version": EXPORTER_VERSION,
            "weights_version": WEIGHTS_VERSION,
            "converter": converter_versions(self.fmt, self.precision),
        }
        if self.fmt is ExportFormat.ONNX and self.precision is Precision.INT8:
            described["quantization"] = dict(ONNX_INT8_SETTINGS)
        if self.kind == "network":
            described["method"] = self.method.value
        if self.assembled:
            described["assembler"] = assembler_versions()
        return described

    def digest(self) -> str:
        canonical = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def filename_suffix(self) -> str:
        return f".{self.fmt.value}"


@cache
def converter_versions(fmt: ExportFormat, precision: Precision) -> dict[str, str]:
    """Versions of the libraries that produce ``fmt``, read without importing them (fast)."""
    wanted = _CONVERTER_PACKAGES[fmt]
    if fmt is ExportFormat.ONNX and precision is Precision.INT8:
        wanted += _ONNX_INT8_PACKAGES
    versions: dict[str, str] = {}
    for name, distributions in wanted:
        version = _installed_version(distributions)
        if version is None:
            raise ImportError(
                f"{fmt.value} {precision.value} export needs {name}, which is not installed: "
                "pip install 'hwlat[convert,agents]'"
            )
        versions[name] = version
    return versions


@cache
def assembler_versions() -> dict[str, str]:
    """Versions of the libraries that join layer files, read without importing them."""
    versions: dict[str, str] = {}
    for name, distributions in _ASSEMBLER_PACKAGES:
        version = _installed_version(distributions)
        if version is None:
            raise ImportError(
                f"assembling networks from layer files needs {name}, which is not installed: "
                "pip install 'hwlat[agents]'"
            )
        versions[name] = version
    return versions


def _installed_version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
