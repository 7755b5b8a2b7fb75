"""Host runners: time a model file with LiteRT or ONNX Runtime.

Flags mirror TFLite's ``benchmark_model`` where they overlap (``num_threads``,
``warmup_runs``, ``num_runs``, ``min_secs``, ``max_secs``, ``use_xnnpack``), so that a host
measurement and a phone measurement are asked for the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from device_agents.statistics import TimingStatistics
from latency_api.schemas.enums import Runtime
from latency_api.schemas.jobs import (
    COOLDOWN_HELP,
    REPEATS_HELP,
    CooldownSecs,
    JobTiming,
    MaxSecs,
    MinSecs,
    NumRuns,
    Repeats,
    WarmupRuns,
)
from models.errors import UserInputError
from models.tflite_inspect import interpreter_module

# Time each model for at least this long (benchmark_model's --min_secs), beyond num_runs.
# Off by default: on these shared 2-core VMs, 0.3 s windows made the pass-to-pass spread of a
# layer's median worse (5.6% against 2.9%, docs/benchmarks.md), because what moves latencies
# here is drift over minutes, and longer windows stretch each pass over more of it.
DEFAULT_MIN_SECS = 0.0


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How the device runs models: part of its identity (see ``DeviceSettings``)."""

    num_threads: int = 1
    use_xnnpack: bool = True
    cpu_affinity: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.num_threads < 1:
            raise ValueError(f"num_threads={self.num_threads}; need at least 1")


class Timing(BaseModel):
    """How each model is timed: a job's ``JobTiming`` with the agent's defaults filled in.

    The fields and their limits are the wire's (``latency_api.schemas.jobs``); only the
    defaults are the agent's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    warmup_runs: WarmupRuns = 10
    num_runs: NumRuns = 50
    # Keep timing past num_runs until this much time has passed (benchmark_model's min_secs).
    min_secs: MinSecs = DEFAULT_MIN_SECS
    # Stop early once this much time has passed, even below num_runs.
    max_secs: MaxSecs = 150.0
    repeats: Repeats = Field(default=1, description=REPEATS_HELP)
    cooldown_secs: CooldownSecs = Field(default=0.0, description=COOLDOWN_HELP)

    def wire(self) -> JobTiming:
        """As a job's timing, every field set."""
        return JobTiming.model_validate(self.model_dump())

    def under(self, job: JobTiming) -> Timing:
        """What to run for ``job``: the fields it set win, these fill in the rest (both are
        checked against the same limits, so the mix needs no second check)."""
        return self.model_copy(update=job.model_dump(exclude_none=True))


@dataclass(frozen=True, slots=True)
class TimedRuns:
    statistics: TimingStatistics
    samples_ms: tuple[float, ...] = field(repr=False)


class Runner(Protocol):
    runtime: Runtime

    @property
    def version(self) -> str: ...

    def prepare(self, model: Path, options: RuntimeOptions, seed: int) -> Callable[[], None]:
        """Load ``model`` and return a function that runs one inference on fixed inputs."""
        ...


def time_runs(invoke: Callable[[], None], timing: Timing) -> TimedRuns:
    """Warm up, then time single invocations on the monotonic clock."""
    for _ in range(timing.warmup_runs):
        invoke()
    samples_ns: list[int] = []
    start = time.perf_counter_ns()
    min_ns, max_ns = int(timing.min_secs * 1e9), int(timing.max_secs * 1e9)
    while True:
        before = time.perf_counter_ns()
        invoke()
        after = time.perf_counter_ns()
        samples_ns.append(after - before)
        elapsed = after - start
        if elapsed >= max_ns or (len(samples_ns) >= timing.num_runs and elapsed >= min_ns):
            break
    samples_ms = tuple(ns / 1e6 for ns in samples_ns)
    return TimedRuns(TimingStatistics.from_samples_ms(samples_ms), samples_ms)


def measure(
    runner: Runner, model: Path, options: RuntimeOptions, timing: Timing, seed: int = 0
) -> TimedRuns:
    """Load and time ``model``, pinned to ``options.cpu_affinity`` if given."""
    if not model.is_file():
        raise FileNotFoundError(f"model file {model} does not exist")
    with pinned(options.cpu_affinity):
        invoke = runner.prepare(model, options, seed)
        return time_runs(invoke, timing)


@contextmanager
def pinned(cpus: frozenset[int] | None) -> Iterator[None]:
    """Run the block on ``cpus`` only (like ``taskset``), restoring the old mask after."""
    if cpus is None:
        yield
        return
    available = os.sched_getaffinity(0)
    if not cpus <= available:
        raise UserInputError(
            f"CPU affinity {sorted(cpus)} asks for CPUs outside {sorted(available)}"
        )
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, available)


def random_input(shape: tuple[int, ...], dtype: Any, rng: np.random.Generator) -> Any:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


class LiteRTRunner:
    runtime = Runtime.litert

    @property
    def version(self) -> str:
        try:
            from importlib.metadata import version

            return f"ai-edge-litert {version('ai-edge-litert')}"
        except ImportError:  # pragma: no cover - metadata is stdlib
            return "unknown"

    def prepare(self, model: Path, options: RuntimeOptions, seed: int) -> Callable[[], None]:
        # The same import (LiteRT, tflite_runtime as the fallback) the exporters' checks use.
        litert = interpreter_module()
        kwargs: dict[str, Any] = {"model_path": str(model), "num_threads": options.num_threads}
        if not options.use_xnnpack:
            kwargs["experimental_op_resolver_type"] = (
                litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        interpreter = litert.Interpreter(**kwargs)
        interpreter.allocate_tensors()
        rng = np.random.default_rng(seed)
        for detail in interpreter.get_input_details():
            shape = tuple(int(d) for d in detail["shape"])
            interpreter.set_tensor(detail["index"], random_input(shape, detail["dtype"], rng))
        invoke: Callable[[], None] = interpreter.invoke
        return invoke


class OnnxRuntimeRunner:
    runtime = Runtime.onnxruntime

    @property
    def version(self) -> str:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"

    def prepare(self, model: Path, options: RuntimeOptions, seed: int) -> Callable[[], None]:
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = options.num_threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            str(model), sess_options=session_options, providers=["CPUExecutionProvider"]
        )
        rng = np.random.default_rng(seed)
        feeds = {
            i.name: random_input(
                tuple(int(d) for d in i.shape), _ONNX_DTYPES.get(i.type, np.float32), rng
            )
            for i in session.get_inputs()
        }

        def invoke() -> None:
            session.run(None, feeds)

        return invoke


_ONNX_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
}


HOST_RUNTIMES = (Runtime.litert, Runtime.onnxruntime)


def runner_for(runtime: Runtime | str) -> Runner:
    name = Runtime(runtime)
    if name not in HOST_RUNTIMES:
        raise ValueError(
            f"runtime {name.value!r} does not run on a host; use one of "
            f"{', '.join(r.value for r in HOST_RUNTIMES)}"
        )
    return LiteRTRunner() if name is Runtime.litert else OnnxRuntimeRunner()
