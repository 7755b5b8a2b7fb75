"""Peak memory of a model on a host: what running it adds to a process at its peak.

Measured in a fresh process (``python -m device_agents.memory``), so that nothing the agent's own
process did before (other models, the exporter, the allocator's free lists) hides or inflates
it. The child:

1. imports the runtime, then resets the kernel's high-water mark of its resident set (Linux:
   ``5`` written to ``/proc/self/clear_refs``, since 4.0) and reads its resident set
   (``VmRSS``);
2. loads the model the way the timed runs do (``device_agents.runners``), allocates it and
   invokes it ``runs`` times;
3. reads the high-water mark (``VmHWM``).

hwlat reports ``peak_bytes = VmHWM - VmRSS before loading``. That is what the operating system
charged the process for this model at its worst moment, and what a phone's low-memory killer
acts on. It includes the weights, the activations' arena, and the runtime's own buffers for
the model: XNNPACK's delegate added about 2 MB here whatever the model, and ONNX Runtime
about twice LiteRT's figure. The runtime's arena alone would be a lower bound that leaves all
of that out. A high-resolution layer with a few kilobytes of weights still peaks at
megabytes, from its activations.

Where the kernel cannot reset the mark (not Linux, or ``/proc`` hidden), the measurement is
refused with the reason, never replaced by a figure that means something else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from device_agents.runners import RuntimeOptions, runner_for
from latency_api.schemas.enums import Runtime

METHOD = "Linux VmHWM over VmRSS after clear_refs, in a fresh process"
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_HIGH_WATER_MARK = "5"


class MemoryUnmeasurable(RuntimeError):
    """This host cannot measure a process's peak memory the way hwlat defines it."""


@dataclass(frozen=True)
class PeakMemory:
    peak_bytes: int  # what the model added to the process at its peak (see the module doc)
    baseline_bytes: int  # the child's resident set with the runtime imported, before the model
    model_bytes: int  # the model file's size
    runs: int
    method: str = METHOD


def measure_peak_memory(
    model: Path,
    runtime: Runtime | str,
    options: RuntimeOptions | None = None,
    runs: int = 3,
    timeout_s: float = 300.0,
) -> PeakMemory:
    """The peak memory of ``model`` under ``runtime``, measured in a fresh Python process."""
    if runs < 1:
        raise ValueError(f"runs={runs}: the model must run at least once")
    if not model.is_file():
        raise FileNotFoundError(f"no model file at {model}")
    options = options or RuntimeOptions()
    command = [
        sys.executable,
        "-m",
        "device_agents.memory",
        str(model),
        "--runtime",
        Runtime(runtime).value,
        "--threads",
        str(options.num_threads),
        "--runs",
        str(runs),
    ]
    if not options.use_xnnpack:
        command.append("--no-xnnpack")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        if done.returncode == 3:
            raise MemoryUnmeasurable(reason)
        raise RuntimeError(f"measuring the peak memory of {model} failed: {reason}")
    return PeakMemory(**json.loads(done.stdout.strip().splitlines()[-1]))


def _status_bytes(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise MemoryUnmeasurable(f"{_STATUS} has no {field} line")


def _import_runtime(runtime: Runtime) -> None:
    """Load the runtime's libraries before the baseline, so they do not count as the model's."""
    if runtime is Runtime.litert:
        from models.tflite_inspect import interpreter_module

        interpreter_module()
    else:
        import onnxruntime  # noqa: F401


def _child(argv: list[str]) -> PeakMemory:
    parser = argparse.ArgumentParser(prog="python -m device_agents.memory")
    parser.add_argument("model", type=Path)
    parser.add_argument("--runtime", default=Runtime.litert.value)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-xnnpack", action="store_true")
    args = parser.parse_args(argv)
    runtime = Runtime(args.runtime)
    runner = runner_for(runtime)
    _import_runtime(runtime)
    try:
        _CLEAR_REFS.write_text(_RESET_HIGH_WATER_MARK)
    except OSError as error:
        raise MemoryUnmeasurable(
            f"cannot reset this process's memory high-water mark ({_CLEAR_REFS}: {error}); "
            "peak memory is measured on Linux hosts only"
        ) from None
    baseline = _status_bytes("VmRSS")
    invoke = runner.prepare(args.model, RuntimeOptions(args.threads, not args.no_xnnpack), seed=0)
    for _ in range(args.runs):
        invoke()
    peak = _status_bytes("VmHWM")
    return PeakMemory(
        peak_bytes=max(0, peak - baseline),
        baseline_bytes=baseline,
        model_bytes=os.path.getsize(args.model),
        runs=args.runs,
    )


def main() -> None:
    try:
        result = _child(sys.argv[1:])
    except MemoryUnmeasurable as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(3)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
