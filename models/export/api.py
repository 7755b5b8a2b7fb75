"""Export one layer or one network, through the content-addressed cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy.typing as npt

from models.export import converters
from models.export.cache import artifact_path, atomic_target, write_metadata
from models.export.spec import ExportFormat, ExportSpec
from models.layer_key import LayerKey, parse
from models.precision import Precision
from models.search_space import SearchSpace


def export_layer(
    key: LayerKey | str,
    fmt: ExportFormat | str = ExportFormat.TFLITE,
    precision: Precision | str = Precision.FP32,
    cache_dir: Path | str | None = None,
) -> Path:
    """The cached file of one layer variant, converting it first if it is not there yet."""
    return export_spec(ExportSpec.layer(_key(key), fmt, precision), cache_dir)


def export_network(
    space: SearchSpace,
    arch: Sequence[int] | npt.ArrayLike,
    fmt: ExportFormat | str = ExportFormat.TFLITE,
    precision: Precision | str = Precision.FP32,
    cache_dir: Path | str | None = None,
) -> Path:
    """The cached file of a whole architecture of ``space`` (stem to classifier)."""
    return export_keys(space.network(arch), fmt, precision, cache_dir)


def export_keys(
    keys: Sequence[LayerKey | str],
    fmt: ExportFormat | str = ExportFormat.TFLITE,
    precision: Precision | str = Precision.FP32,
    cache_dir: Path | str | None = None,
) -> Path:
    """The cached file of a network given as its layer keys in order; skips are dropped."""
    return export_spec(ExportSpec.network([_key(k) for k in keys], fmt, precision), cache_dir)


def export_spec(spec: ExportSpec, cache_dir: Path | str | None = None) -> Path:
    target = artifact_path(spec, cache_dir)
    if target.exists():
        return target
    with atomic_target(target) as tmp:
        converters.convert(spec, tmp)
        # Before the model moves into place: whoever finds the model also finds what it is,
        # and a failed conversion leaves nothing behind.
        write_metadata(spec, target)
    return target


def _key(key: LayerKey | str) -> LayerKey:
    return key if isinstance(key, LayerKey) else parse(key)
