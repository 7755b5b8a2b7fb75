"""Export one layer or one network, through the content-addressed cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy.typing as npt

from models.export import converters
from models.export.cache import artifact_path, atomic_target, converting, write_metadata
from models.export.spec import ExportFormat, ExportMethod, ExportSpec
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
    method: ExportMethod | str | None = None,
) -> Path:
    """The cached file of a whole architecture of ``space`` (stem to classifier)."""
    return export_keys(space.network(arch), fmt, precision, cache_dir, method)


def export_keys(
    keys: Sequence[LayerKey | str],
    fmt: ExportFormat | str = ExportFormat.TFLITE,
    precision: Precision | str = Precision.FP32,
    cache_dir: Path | str | None = None,
    method: ExportMethod | str | None = None,
) -> Path:
    """The cached file of a network given as its layer keys in order; skips are dropped.

    TFLite networks are assembled from the cached layer files by default (missing layers are
    exported first); ``method="convert"`` converts the whole Keras network instead.
    """
    spec = ExportSpec.network([_key(k) for k in keys], fmt, precision, method)
    return export_spec(spec, cache_dir)


def export_spec(spec: ExportSpec, cache_dir: Path | str | None = None) -> Path:
    target = artifact_path(spec, cache_dir)
    if target.exists():
        return target
    if spec.assembled:
        layers = [export_spec(s, cache_dir) for s in spec.layer_specs()]
        return _write(spec, target, layers)
    # A conversion takes a TensorFlow or torch session of up to seconds: processes that want
    # the same file at once (a pool's workers, two agents, parallel tests) wait for the first
    # one instead of converting it again. Joining is cheap and nests conversions, so it takes
    # no lock.
    with converting(target):
        if target.exists():
            return target
        return _write(spec, target, [])


def _write(spec: ExportSpec, target: Path, layers: Sequence[Path]) -> Path:
    with atomic_target(target) as tmp:
        if spec.assembled:
            tmp.write_bytes(assemble_network(spec, layers))
        else:
            converters.convert(spec, tmp)
        # Before the model moves into place: whoever finds the model also finds what it is,
        # and a failed export leaves nothing behind.
        write_metadata(spec, target)
    return target


def assemble_network(spec: ExportSpec, layer_files: Sequence[Path]) -> bytes:
    """The network file of ``spec`` from its layers' files (``spec.layer_specs()`` in order)."""
    # Imported here: joining needs LiteRT's flatbuffer schema, converting needs TensorFlow;
    # neither belongs in the import of models.export.
    from models.export import assemble

    # A network repeats layer files (the same block at several positions): read each once.
    read = {path: path.read_bytes() for path in set(layer_files)}
    layers = [read[path] for path in layer_files]
    labels = [str(key) for key in spec.keys]
    if spec.precision is Precision.FP32:
        data = assemble.join_tflite(layers, labels)
    else:
        fp32_metadata = assemble.read_metadata(layers[0])
        metadata = {}
        if assemble.CONVERSION_METADATA in fp32_metadata:
            metadata[assemble.CONVERSION_METADATA] = converters.int8_conversion_metadata(
                fp32_metadata[assemble.CONVERSION_METADATA]
            )
        joined = assemble.join_tflite(layers, labels, metadata=metadata)
        data = converters.quantize_int8(joined, spec.input_shape_nhwc, spec.label)
    shapes = assemble.io_shapes(data)
    if shapes != (spec.input_shape_nhwc, spec.output_shape_nhwc):
        raise assemble.AssemblyError(
            f"the assembled {spec.label} maps {shapes[0]} to {shapes[1]}, but its keys say "
            f"{spec.input_shape_nhwc} to {spec.output_shape_nhwc}; a layer file in the cache "
            "does not match its key: delete it and export again"
        )
    return data


def _key(key: LayerKey | str) -> LayerKey:
    return key if isinstance(key, LayerKey) else parse(key)
