"""Join per-layer TFLite flatbuffers into one network's flatbuffer, without TensorFlow.

A network's ``.tflite`` is its layers' ``.tflite`` files in a chain: layer i's output tensor
becomes layer i+1's input tensor (the next file's own input tensor is dropped), and everything
else (operators, tensors, operator codes, buffers) is copied with its indices renumbered.
Constant tensors with equal contents are stored once, as the converter stores them (the same
layer key twice in a network has the same weights, see :func:`models.blocks.block_params`).

For fp32 layer files the result is the model the converter makes of the whole Keras network:
the same operators in the same order with the same options, the same tensors (shapes, types,
shared constants) and the same weight bytes; only tensor names, the order of the tensor and
buffer tables, and the hash inside the converter's CONVERSION_METADATA differ.

int8 layer files cannot be joined into the converted int8 network: each was calibrated on its
own seeded input, so at a join the producer's output scale is not the consumer's input scale,
and the converter calibrates every tensor on the activations that flow there in the network.
An int8 network is therefore the joined fp32 network quantised by the converter's own
calibration and quantiser (:func:`models.export.converters.quantize_int8`), which makes it
the converter's int8 network exactly; that step needs TensorFlow. (Calibrating with LiteRT
instead would not: its float kernels differ from the converter's by an ulp or two, enough to
move scales in their last bit.) Joining int8 files is refused unless the quantisation at
every join is identical.

Everything is checked before a byte is written: one subgraph, one input and one output per
layer, equal shapes and types at every join, the same quantisation on both sides. A chain that
does not fit raises :class:`AssemblyError` saying which join and why.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

IDENTIFIER: Final = b"TFL3"
CONVERSION_METADATA: Final = b"CONVERSION_METADATA"
MIN_RUNTIME_VERSION: Final = b"min_runtime_version"
# The signature a Keras model's file carries (see with_signature).
SERVING_SIGNATURE: Final = b"serving_default"
SIGNATURE_INPUT: Final = b"input"
SIGNATURE_OUTPUT: Final = b"output_0"
_SCHEMA_VERSION: Final = 3
# The schema asks for buffer data on 16-byte boundaries (force_align: 16), which the Python
# object API ignores; _AlignedBuffer packs it so. (The converter's files, rewritten by its own
# Python deduplication pass, only keep 4; kernels need the element size.)
_BUFFER_ALIGNMENT: Final = 16
_TYPE_NAMES: Final[dict[int, str]] = {
    value: name.lower() for name, value in vars(schema.TensorType).items() if name.isupper()
}


class AssemblyError(ValueError):
    """The layer files do not form one valid chain; the message says which join and why."""


def join_tflite(
    layers: Sequence[bytes],
    labels: Sequence[str] | None = None,
    *,
    metadata: Mapping[bytes, bytes] | None = None,
) -> bytes:
    """The ``.tflite`` of the network whose layers, in order, are the flatbuffers ``layers``.

    ``labels`` name the layers in error messages (e.g. their layer keys). ``metadata``
    entries replace the layers' model metadata of the same name.
    """
    if not layers:
        raise AssemblyError("no layer files to join; a network needs at least one layer")
    names = list(labels) if labels is not None else [f"layer {i}" for i in range(len(layers))]
    if len(names) != len(layers):
        raise AssemblyError(f"got {len(names)} labels for {len(layers)} layer files")
    # A key that occurs several times in a network is unpacked once; nothing below mutates
    # the unpacked objects, so the occurrences can share them.
    unpacked: dict[bytes, _Layer] = {}
    chain = []
    for data, name in zip(layers, names, strict=True):
        if data not in unpacked:
            unpacked[data] = _unpack(data, name)
        chain.append(unpacked[data])
    for i, (before, after) in enumerate(itertools.pairwise(chain)):
        _check_join(before, after, f"join {i + 1} ({names[i]} -> {names[i + 1]})")
    return _pack(_join(chain, dict(metadata or {})))


def with_signature(
    model: bytes,
    key: bytes = SERVING_SIGNATURE,
    input_name: bytes = SIGNATURE_INPUT,
    output_name: bytes = SIGNATURE_OUTPUT,
) -> bytes:
    """``model`` with one SignatureDef over its graph's input and output.

    TFLite's converter writes none for a frozen concrete function; a Keras model's file has
    this one (``serving_default``, ``input`` -> ``output_0``), which runtimes' signature runners
    look up.
    """
    unpacked = schema.ModelT.InitFromPackedBuf(model, 0)
    graph = unpacked.subgraphs[0]
    signature = schema.SignatureDefT()
    signature.signatureKey = key
    signature.subgraphIndex = 0
    signature.inputs = [_tensor_map(input_name, int(graph.inputs[0]))]
    signature.outputs = [_tensor_map(output_name, int(graph.outputs[0]))]
    unpacked.signatureDefs = [signature]
    unpacked.buffers = [
        _AlignedBuffer(buffer.data.tobytes()) if buffer.data is not None else buffer
        for buffer in unpacked.buffers
    ]
    return _pack(unpacked)


def read_metadata(model: bytes) -> dict[bytes, bytes]:
    """The model-level metadata entries of a TFLite flatbuffer, by name."""
    root = schema.Model.GetRootAs(model, 0)
    entries = {}
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        entries[entry.Name()] = root.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return entries


def io_shapes(model: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of the (single) input and output tensor of a TFLite flatbuffer."""
    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)

    def shape(index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in graph.Tensors(index).ShapeAsNumpy())

    return shape(graph.Inputs(0)), shape(graph.Outputs(0))


@dataclass(frozen=True, slots=True)
class _Layer:
    model: Any  # schema.ModelT
    graph: Any  # schema.SubGraphT
    input: int
    output: int


@functools.lru_cache(maxsize=256)
def _model(data: bytes) -> Any:
    """The object tree of a layer file, kept across joins: a search space's networks share
    its few dozen layers, and unpacking a layer again for each of hundreds of networks was
    most of the time a join took. Nothing mutates the trees (see join_tflite)."""
    return schema.ModelT.InitFromPackedBuf(data, 0)


def _unpack(data: bytes, name: str) -> _Layer:
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise AssemblyError(f"{name}: not a TFLite flatbuffer (no {IDENTIFIER!r} identifier)")
    model = _model(data)
    if model.version != _SCHEMA_VERSION:
        raise AssemblyError(f"{name}: schema version {model.version}, expected {_SCHEMA_VERSION}")
    subgraphs = model.subgraphs or []
    if len(subgraphs) != 1:
        raise AssemblyError(
            f"{name}: has {len(subgraphs)} subgraphs; only single-subgraph layers (no control "
            "flow) can be joined"
        )
    graph = subgraphs[0]
    inputs = [] if graph.inputs is None else [int(i) for i in graph.inputs]
    outputs = [] if graph.outputs is None else [int(i) for i in graph.outputs]
    if len(inputs) != 1 or len(outputs) != 1:
        raise AssemblyError(
            f"{name}: has {len(inputs)} inputs and {len(outputs)} outputs; a layer in a chain "
            "needs exactly one of each"
        )
    if any(buffer.offset or buffer.size for buffer in model.buffers or ()):
        raise AssemblyError(f"{name}: keeps buffers outside the flatbuffer; not supported")
    if any(tensor.isVariable for tensor in graph.tensors):
        raise AssemblyError(f"{name}: has variable tensors (state), which cannot be joined")
    return _Layer(model, graph, inputs[0], outputs[0])


def _check_join(before: _Layer, after: _Layer, where: str) -> None:
    out = before.graph.tensors[before.output]
    inp = after.graph.tensors[after.input]
    if list(out.shape) != list(inp.shape):
        raise AssemblyError(
            f"{where}: the output shape {list(out.shape)} is not the next input shape "
            f"{list(inp.shape)}"
        )
    if out.type != inp.type:
        raise AssemblyError(
            f"{where}: the output is {_type_name(out.type)} but the next layer takes "
            f"{_type_name(inp.type)}; join layers of one precision"
        )
    produced, expected = _quantisation_key(out.quantization), _quantisation_key(inp.quantization)
    if produced != expected:
        raise AssemblyError(
            f"{where}: the output is quantised as {_describe_quantisation(out)} but the next "
            f"layer expects {_describe_quantisation(inp)}. Separately calibrated int8 layers "
            "do not chain; join the fp32 layers and quantise the network "
            "(models.export.converters.quantize_int8)"
        )


def _quantisation_key(q: Any) -> tuple[Any, ...] | None:
    """Everything of a tensor's quantisation that matters, comparable; None for none."""
    if q is None or (q.scale is None and q.min is None and q.details is None):
        return None
    if q.details is not None:
        # Custom or block-wise schemes are opaque here; identity keeps them apart.
        return (id(q),)

    def raw(values: Any, dtype: str) -> bytes | None:
        return None if values is None else np.asarray(values, dtype).tobytes()

    return (
        raw(q.scale, "<f4"),
        raw(q.zeroPoint, "<i8"),
        raw(q.min, "<f4"),
        raw(q.max, "<f4"),
        int(q.quantizedDimension),
    )


def _describe_quantisation(tensor: Any) -> str:
    q = tensor.quantization
    if _quantisation_key(q) is None:
        return "not quantised"
    scale = np.asarray(q.scale if q.scale is not None else [], np.float32)
    zero_point = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
    if scale.size == 1 and zero_point.size == 1:
        return f"scale {float(scale[0]):.6g}, zero point {int(zero_point[0])}"
    return f"{scale.size} scales"


def _type_name(value: int) -> str:
    return _TYPE_NAMES.get(value, str(value))


class _Joiner:
    """The network being built: operator codes, buffers and constant tensors, each stored once."""

    def __init__(self) -> None:
        self.codes: list[Any] = []
        self._code_index: dict[tuple[Any, ...], int] = {}
        # Buffer 0 is the schema's empty sentinel; every non-constant tensor points to it.
        self.buffers: list[Any] = [schema.BufferT()]
        self._buffer_index: dict[bytes, int] = {}
        self.tensors: list[Any] = []
        self._constant_index: dict[tuple[Any, ...], int] = {}
        self.operators: list[Any] = []

    def code(self, code: Any) -> int:
        key = (code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version)
        if key not in self._code_index:
            self._code_index[key] = len(self.codes)
            self.codes.append(code)
        return self._code_index[key]

    def add_buffer(self, content: bytes) -> int:
        self.buffers.append(_AlignedBuffer(content))
        return len(self.buffers) - 1

    def tensor(self, tensor: Any, data: Any, name: bytes | None) -> int:
        """Index of a copy of ``tensor`` (an equal constant's, if one is stored already)."""
        content = b"" if data is None else data.tobytes()
        key: tuple[Any, ...] | None = None
        if content:
            if content not in self._buffer_index:
                self._buffer_index[content] = self.add_buffer(content)
            key = _constant_key(tensor, self._buffer_index[content])
            if key is not None and key in self._constant_index:
                return self._constant_index[key]
        copy = schema.TensorT()
        copy.shape = tensor.shape
        copy.type = tensor.type
        copy.buffer = self._buffer_index[content] if content else 0
        copy.name = name
        copy.quantization = tensor.quantization
        copy.isVariable = tensor.isVariable
        copy.sparsity = tensor.sparsity
        copy.shapeSignature = tensor.shapeSignature
        copy.hasRank = tensor.hasRank
        copy.variantTensors = tensor.variantTensors
        self.tensors.append(copy)
        index = len(self.tensors) - 1
        if key is not None:
            self._constant_index[key] = index
        return index


def _constant_key(tensor: Any, buffer: int) -> tuple[Any, ...] | None:
    """What makes two constant tensors interchangeable; None when that cannot be told."""
    if tensor.sparsity is not None or tensor.variantTensors is not None:
        return None
    shape = () if tensor.shape is None else tuple(int(d) for d in tensor.shape)
    signature = None if tensor.shapeSignature is None else tuple(tensor.shapeSignature)
    quantisation = _quantisation_key(tensor.quantization)
    return (buffer, int(tensor.type), shape, signature, bool(tensor.hasRank), quantisation)


def _join(chain: list[_Layer], metadata: dict[bytes, bytes]) -> Any:
    joiner = _Joiner()
    network_input = previous_output = -1
    last = len(chain) - 1
    for position, layer in enumerate(chain):
        model, graph = layer.model, layer.graph
        codes = [joiner.code(code) for code in model.operatorCodes]
        new_index: dict[int, int] = {}
        if position > 0:
            new_index[layer.input] = previous_output
        for index, tensor in enumerate(graph.tensors):
            if index in new_index:
                continue
            name = tensor.name
            keeps_name = (position == 0 and index == layer.input) or (
                position == last and index == layer.output
            )
            if name is not None and not keeps_name:
                # Every layer file names its tensors alike; a prefix keeps them apart.
                name = f"b{position}/".encode() + name
            data = model.buffers[tensor.buffer].data
            new_index[index] = joiner.tensor(tensor, data, name)
        for op in graph.operators:
            joiner.operators.append(_copy_operator(op, codes, new_index))
        if position == 0:
            network_input = new_index[layer.input]
        previous_output = new_index[layer.output]
    graph = schema.SubGraphT()
    graph.tensors = joiner.tensors
    graph.operators = joiner.operators
    graph.inputs = [network_input]
    graph.outputs = [previous_output]
    graph.name = chain[0].graph.name
    model = schema.ModelT()
    model.version = _SCHEMA_VERSION
    model.description = chain[0].model.description
    model.operatorCodes = joiner.codes
    model.subgraphs = [graph]
    model.buffers = joiner.buffers
    model.metadata = _metadata(chain, joiner, metadata)
    model.signatureDefs = _signature(chain, network_input, previous_output)
    return model


def _copy_operator(op: Any, codes: list[int], new_index: dict[int, int]) -> Any:
    def renumber(indices: Any) -> list[int] | None:
        if indices is None:
            return None
        # -1 marks an optional input that is absent.
        return [new_index[int(i)] if i >= 0 else -1 for i in indices]

    copy = schema.OperatorT()
    copy.opcodeIndex = codes[op.opcodeIndex]
    copy.inputs = renumber(op.inputs)
    copy.outputs = renumber(op.outputs)
    copy.intermediates = renumber(op.intermediates)
    copy.builtinOptionsType = op.builtinOptionsType
    copy.builtinOptions = op.builtinOptions
    copy.builtinOptions2Type = op.builtinOptions2Type
    copy.builtinOptions2 = op.builtinOptions2
    copy.customOptions = op.customOptions
    copy.customOptionsFormat = op.customOptionsFormat
    copy.mutatingVariableInputs = op.mutatingVariableInputs
    if op.largeCustomOptionsSize:
        raise AssemblyError("an operator keeps its custom options outside the flatbuffer")
    return copy


def _metadata(chain: list[_Layer], joiner: _Joiner, replace: dict[bytes, bytes]) -> list[Any]:
    """One entry per name: the newest minimum runtime any layer needs; otherwise the first
    layer's entry (the converter's CONVERSION_METADATA, its version and options, is the same
    in every file of one export setting but for a hash of that file's graph)."""
    contents: dict[bytes, bytes] = {}
    for layer in chain:
        for entry in layer.model.metadata or ():
            data = layer.model.buffers[entry.buffer].data
            content = b"" if data is None else data.tobytes()
            if entry.name not in contents:
                contents[entry.name] = content
            elif entry.name == MIN_RUNTIME_VERSION:
                contents[entry.name] = max(contents[entry.name], content, key=_runtime_version)
    contents.update(replace)
    entries = []
    for name, content in contents.items():
        entry = schema.MetadataT()
        entry.name = name
        # Never shared with a tensor's buffer, even when the bytes are equal.
        entry.buffer = joiner.add_buffer(content)
        entries.append(entry)
    return entries


def _runtime_version(content: bytes) -> tuple[int, ...]:
    text = content.rstrip(b"\0").decode("ascii", errors="replace")
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise AssemblyError(f"unreadable min_runtime_version {text!r} in a layer file") from None


def _signature(chain: list[_Layer], network_input: int, network_output: int) -> list[Any]:
    first, final = chain[0].model.signatureDefs, chain[-1].model.signatureDefs
    if not first or not final:
        return []
    signature = schema.SignatureDefT()
    signature.signatureKey = first[0].signatureKey
    signature.subgraphIndex = 0
    signature.inputs = [_tensor_map(first[0].inputs[0].name, network_input)]
    signature.outputs = [_tensor_map(final[0].outputs[0].name, network_output)]
    return [signature]


def _tensor_map(name: bytes, index: int) -> Any:
    entry = schema.TensorMapT()
    entry.name = name
    entry.tensorIndex = index
    return entry


class _AlignedBuffer:
    """Packs like ``schema.BufferT``, with the data on a 16-byte boundary."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def Pack(self, builder: flatbuffers.Builder) -> int:
        vector = 0
        if self.data:
            builder.StartVector(1, len(self.data), _BUFFER_ALIGNMENT)
            builder.head -= len(self.data)
            builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
            vector = builder.EndVector()
        schema.BufferStart(builder)
        if vector:
            schema.BufferAddData(builder, vector)
        return int(schema.BufferEnd(builder))


def _pack(model: Any) -> bytes:
    data_bytes = sum(len(b.data) for b in model.buffers if isinstance(b, _AlignedBuffer))
    # Sized up front, so that the builder never copies its buffer to grow.
    builder = flatbuffers.Builder(data_bytes + _BUFFER_ALIGNMENT * len(model.buffers) + (1 << 20))
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(builder.Output())
