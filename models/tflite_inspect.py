"""Open, inspect and run TFLite files with LiteRT (or the older ``tflite_runtime``).

Shared by the exporter tests and the device agents. Delegates are off by default so that the
operator list is the graph's own, not XNNPACK's rewritten partition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ModelSource = Path | str | bytes


def interpreter_module() -> Any:
    """The LiteRT interpreter module: ``ai_edge_litert.interpreter``, else ``tflite_runtime``."""
    try:
        from ai_edge_litert import interpreter as litert

        return litert
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as tflite_runtime

        return tflite_runtime
    except ImportError:
        raise ImportError(
            "running TFLite files needs LiteRT: pip install ai-edge-litert "
            "(or pip install 'hwlat[agents]'); tflite-runtime also works"
        ) from None


def load_interpreter(
    model: ModelSource, *, num_threads: int = 1, default_delegates: bool = False
) -> Any:
    """An allocated interpreter; ``default_delegates=False`` keeps XNNPACK out of the graph."""
    module = interpreter_module()
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if isinstance(model, bytes):
        kwargs["model_content"] = model
    else:
        kwargs["model_path"] = str(model)
    if not default_delegates:
        kwargs["experimental_op_resolver_type"] = (
            module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    interpreter = module.Interpreter(**kwargs)
    interpreter.allocate_tensors()
    return interpreter


def operator_names(model: ModelSource) -> list[str]:
    """Builtin operator names of the model's nodes in execution order, e.g. ``CONV_2D``."""
    interpreter = load_interpreter(model)
    details = getattr(interpreter, "_get_ops_details", None)
    if details is None:
        raise RuntimeError(
            "this LiteRT build does not expose Interpreter._get_ops_details; "
            "install ai-edge-litert >= 1.2"
        )
    return [str(op["op_name"]) for op in details()]


def run_float(
    model: ModelSource | Any, x: npt.NDArray[np.float32], **load_kwargs: Any
) -> npt.NDArray[np.float32]:
    """Invoke on float input ``x`` and return float output, (de)quantising int8/uint8 I/O.

    ``model`` may also be an interpreter returned by :func:`load_interpreter`.
    """
    interpreter = (
        load_interpreter(model, **load_kwargs) if isinstance(model, Path | str | bytes) else model
    )
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    if tuple(inp["shape"]) != x.shape:
        raise ValueError(f"input shape {x.shape} does not match the model's {tuple(inp['shape'])}")
    interpreter.set_tensor(inp["index"], _quantize(x, inp))
    interpreter.invoke()
    return _dequantize(interpreter.get_tensor(out["index"]), out)


def _quantize(x: npt.NDArray[np.float32], detail: dict[str, Any]) -> npt.NDArray[Any]:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero_point = (float(v) for v in detail["quantization"])
    info = np.iinfo(dtype)
    q = np.round(x / np.float32(scale)) + np.float32(zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(y: npt.NDArray[Any], detail: dict[str, Any]) -> npt.NDArray[np.float32]:
    if np.dtype(detail["dtype"]) == np.float32:
        return y.astype(np.float32)
    scale, zero_point = (float(v) for v in detail["quantization"])
    return ((y.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
