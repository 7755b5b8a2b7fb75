"""What an export is: the layers, the format and precision, and the cache name derived from them.

The cache name is a sha256 of a canonical JSON of everything that determines the file's bytes:
the layer keys, format, precision, :data:`EXPORTER_VERSION`, the weights version and the
versions of the converting libraries. Change any of them and the old file is simply not found.
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
from models.layer_key import LayerKey, Op
from models.precision import Precision

# Bump when a change here or in the builders alters exported files for the same inputs.
EXPORTER_VERSION: Final = 1
ONNX_OPSET: Final = 17
# Samples of the seeded representative dataset used to calibrate int8 ranges.
CALIBRATION_SAMPLES: Final = 16


class ExportFormat(StrEnum):
    TFLITE = "tflite"
    ONNX = "onnx"

    @classmethod
    def parse(cls, value: str) -> ExportFormat:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown export format {value!r}; expected one of {', '.join(cls)}"
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


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """One file to export: a single layer, or a whole network of layers in order."""

    kind: Literal["layer", "network"]
    keys: tuple[LayerKey, ...]
    fmt: ExportFormat
    precision: Precision

    @classmethod
    def layer(
        cls, key: LayerKey, fmt: ExportFormat | str, precision: Precision | str
    ) -> ExportSpec:
        if key.op is Op.SKIP:
            raise NothingToExport(key)
        return cls("layer", (key,), ExportFormat.parse(fmt), Precision.parse(precision))

    @classmethod
    def network(
        cls, keys: Sequence[LayerKey], fmt: ExportFormat | str, precision: Precision | str
    ) -> ExportSpec:
        # Skips are dropped before hashing: the file depends only on the layers that compute.
        blocks = network_blocks(keys)
        return cls("network", blocks, ExportFormat.parse(fmt), Precision.parse(precision))

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
        return {
            "kind": self.kind,
            "keys": [str(k) for k in self.keys],
            "format": self.fmt.value,
            "precision": self.precision.value,
            "exporter_version": EXPORTER_VERSION,
            "weights_version": WEIGHTS_VERSION,
            "converter": converter_versions(self.fmt, self.precision),
        }

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


def _installed_version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
