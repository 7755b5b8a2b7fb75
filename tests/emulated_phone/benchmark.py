"""The emulated phone's ``benchmark_model``: the pushed .tflite really runs, with LiteRT.

Flags, phases and output follow TFLite's tool (``benchmark_model.cc``, ``stats_calculator.h``):
a warm-up phase of at least ``warmup_runs`` runs and ``warmup_min_secs``, then a timed phase
of at least ``num_runs`` runs and ``min_secs``, each cut at ``max_secs``; microsecond integer
run times; statistics lines ``count= first= curr= min= max= avg= std=`` with the average as C++
prints a double (``%g``), the standard deviation truncated to an integer, and percentiles
(``p5= median= p95=``, element ``n * p / 100`` of the sorted runs) on newer builds. Newer
builds log through TFLite's minimal logger: ``INFO: `` prefixes, on stderr. An unknown flag
only earns a warning, as on a real phone.

Memory follows ``profiling/memory_info.cc``: the footprint is ``ru_maxrss``; the delta line
reports its growth over the run, and newer builds given ``--report_peak_memory_footprint=true``
poll it from a thread started before the model loads (every
``--memory_footprint_check_interval_ms``) and print the largest value seen. Older ("legacy")
builds do not know those two flags.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tests.emulated_phone.shell import Output

# name -> (type, default, label printed by LogParams when the flag is given)
FLAGS: Final[dict[str, tuple[type, Any, str]]] = {
    "num_runs": (int, 50, "Min num runs"),
    "min_secs": (float, 1.0, "Min runs duration (seconds)"),
    "max_secs": (float, 150.0, "Max runs duration (seconds)"),
    "run_delay": (float, -1.0, "Inter-run delay (seconds)"),
    "num_threads": (int, -1, "Num threads"),
    "warmup_runs": (int, 1, "Min warmup runs"),
    "warmup_min_secs": (float, 0.5, "Min warmup runs duration (seconds)"),
    "verbose": (bool, False, "Log parameter values verbosely"),
    "graph": (str, "", "Graph"),
    "enable_op_profiling": (bool, False, "Enable op profiling"),
    "use_xnnpack": (bool, False, "Use xnnpack"),
    "use_gpu": (bool, False, "Use gpu"),
    "use_nnapi": (bool, False, "Use NNAPI"),
    "report_peak_memory_footprint": (bool, False, "Report the peak memory footprint"),
    "memory_footprint_check_interval_ms": (int, 50, "Memory footprint check interval (ms)"),
}
# Flags older builds (the "legacy" form) do not have: they only warn about them.
NEWER_FLAGS: Final = frozenset(
    {"report_peak_memory_footprint", "memory_footprint_check_interval_ms"}
)


# Logged first, as BenchmarkModel::LogParams does before the TFLite model's own parameters.
_BASE_FLAGS: Final = (
    "num_runs",
    "min_secs",
    "max_secs",
    "run_delay",
    "num_threads",
    "warmup_runs",
    "warmup_min_secs",
    "verbose",
)


class FlagError(ValueError):
    pass


@dataclass
class Stat:
    """TFLite's ``Stat<int64_t>`` with percentiles, over run times in microseconds."""

    values: list[int]

    def line(self, percentiles: bool) -> str:
        v = self.values
        n, low, high = len(v), min(v), max(v)
        avg = sum(v) / n
        if low == high:
            text = f"count={n} curr={v[-1]}" + ("(all same)" if n > 1 else "")
        else:
            variance = int(sum(x * x for x in v) / n - avg * avg)
            std = int(math.sqrt(max(variance, 0)))
            text = (
                f"count={n} first={v[0]} curr={v[-1]} min={low} max={high} "
                f"avg={cpp_double(avg)} std={std}"
            )
        if percentiles:
            ordered = sorted(v)
            p5, median, p95 = (ordered[n * p // 100] for p in (5, 50, 95))
            text += f" p5={p5} median={median} p95={p95}"
        return text

    @property
    def avg(self) -> float:
        return sum(self.values) / len(self.values)


def cpp_double(value: float) -> str:
    """A double as ``std::ostream`` prints it by default (6 significant digits)."""
    return f"{value:g}"


def parse_flags(
    args: list[str], known: frozenset[str] = frozenset(FLAGS)
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Values of the known flags, the flags given (in order), and the unconsumed arguments."""
    values = {name: default for name, (_, default, _) in FLAGS.items()}
    given: list[str] = []
    unknown: list[str] = []
    for arg in args:
        name, sep, raw = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or name not in known:
            unknown.append(arg)
            continue
        kind = FLAGS[name][0]
        try:
            if kind is bool:
                if sep and raw not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                values[name] = not sep or raw in ("true", "1")
            else:
                values[name] = kind(raw)
        except ValueError:
            raise FlagError(f"Couldn't parse value '{raw}' for flag '{name}'") from None
        given.append(name)
    return values, given, unknown


Log = Callable[[str], None]


def run_benchmark(
    args: list[str], graph_host: Callable[[str], Path | None], form: str, slowdown: float = 1.0
) -> Output:
    """Run benchmark_model with ``args``, printing as it goes; ``graph_host`` maps the phone's
    path to a host file; ``slowdown`` > 1 stretches every inference (a disturbed run)."""
    result = Output(stream=True)
    info_form = form == "info"

    def log(line: str, severity: str = "INFO") -> None:
        if info_form:
            result.err(f"{severity}: {line}")
        else:
            (result.err if severity == "ERROR" else result.out)(line)

    log("STARTING!")
    try:
        known = frozenset(FLAGS) if info_form else frozenset(FLAGS) - NEWER_FLAGS
        values, given, unknown = parse_flags(args, known)
    except FlagError as error:
        log(str(error), "ERROR")
        log("Benchmarking failed.", "ERROR")
        result.code = 1
        return result
    if unknown:
        log(f"Unconsumed cmdline flags: {' '.join(unknown)}", "WARNING")
    log(f"Log parameter values verbosely: [{int(values['verbose'])}]")
    for name in [*_BASE_FLAGS, "graph"]:
        if name in given and name != "verbose":
            log(f"{FLAGS[name][2]}: [{_param(values[name])}]")
    graph = str(values["graph"])
    log(f"#threads used for CPU inference: [{int(values['num_threads'])}]")
    for name in FLAGS:
        if name in given and name not in (*_BASE_FLAGS, "graph"):
            log(f"{FLAGS[name][2]}: [{_param(values[name])}]")
    host = graph_host(graph) if graph else None
    if host is None:
        if graph:
            log(f"Could not open '{graph}'.", "ERROR")
        log(f"Failed to mmap model {graph}", "ERROR")
        log("Benchmarking failed.", "ERROR")
        result.code = 1
        return result
    log(f"Loaded model {graph}")
    try:
        _time_model(host, values, log, percentiles=info_form, slowdown=slowdown)
    except (ValueError, RuntimeError) as error:
        log(str(error).splitlines()[0] if str(error) else type(error).__name__, "ERROR")
        log("Benchmarking failed.", "ERROR")
        result.code = 1
    return result


def _time_model(
    model: Path, values: dict[str, Any], log: Log, percentiles: bool, slowdown: float = 1.0
) -> None:
    import numpy as np
    from ai_edge_litert import interpreter as litert

    threads = max(1, int(values["num_threads"]))
    use_xnnpack = bool(values["use_xnnpack"])
    monitor = None
    if values["report_peak_memory_footprint"]:
        interval_ms = int(values["memory_footprint_check_interval_ms"])
        if interval_ms <= 0:
            log(
                f"--memory_footprint_check_interval_ms is set to {interval_ms} (ms), This value "
                "is invalid, and it will be set to the default value 50 (ms).",
                "WARNING",
            )
            interval_ms = 50
        monitor = _PeakMonitor(interval_ms / 1000.0)
    start_rss = _max_rss_kb()
    init_start = _now_us()
    kwargs: dict[str, Any] = {"model_path": str(model), "num_threads": threads}
    if not use_xnnpack:
        kwargs["experimental_op_resolver_type"] = (
            litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    # With XNNPACK, LiteRT itself logs "Created TensorFlow Lite XNNPACK delegate for CPU.".
    interpreter = litert.Interpreter(**kwargs)
    interpreter.allocate_tensors()
    init_us = _now_us() - init_start
    init_rss = _max_rss_kb()
    if use_xnnpack:
        log(
            "Explicitly applied XNNPACK delegate, and the model graph will be completely "
            "executed by the delegate."
        )
    log(f"The input model file size (MB): {cpp_double(model.stat().st_size / 1e6)}")
    log(f"Initialized session in {cpp_double(init_us / 1e3)}ms.")
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        shape = tuple(int(d) for d in detail["shape"])
        interpreter.set_tensor(detail["index"], rng.standard_normal(shape).astype(detail["dtype"]))

    def invoke() -> None:
        started = time.perf_counter_ns()
        interpreter.invoke()
        if slowdown > 1.0:
            # Busy, not asleep: the core is taken, as another app would take it.
            until = started + int((time.perf_counter_ns() - started) * slowdown)
            while time.perf_counter_ns() < until:
                pass

    max_secs = float(values["max_secs"])
    warmup = _phase(
        invoke,
        int(values["warmup_runs"]),
        float(values["warmup_min_secs"]),
        max_secs,
        log,
        percentiles,
    )
    timed = _phase(
        invoke,
        int(values["num_runs"]),
        float(values["min_secs"]),
        max_secs,
        log,
        percentiles,
    )
    log(
        f"Inference timings in us: Init: {init_us}, First inference: {warmup.values[0]}, "
        f"Warmup (avg): {cpp_double(warmup.avg)}, Inference (avg): {cpp_double(timed.avg)}"
    )
    log(
        "Note: as the benchmark tool itself affects memory footprint, the following is only "
        "APPROXIMATE to the actual memory footprint of the model at runtime. Take the "
        "information at your discretion."
    )
    overall_rss = _max_rss_kb()
    peak_kb = monitor.stop() if monitor is not None else 0
    log(
        "Memory footprint delta from the start of the tool (MB): "
        f"init={cpp_double((init_rss - start_rss) / 1024.0)} "
        f"overall={cpp_double((overall_rss - start_rss) / 1024.0)}"
    )
    if peak_kb > 0:
        peak_mb = cpp_double(peak_kb / 1024.0)
        log(f"Overall peak memory footprint (MB) via periodic monitoring: {peak_mb}")
        rss_mb, shared_mb = (_statm_pages(i) * os.sysconf("SC_PAGE_SIZE") >> 20 for i in (1, 2))
        log("Memory status at the end of exeution:")  # sic, as the tool spells it
        log(f"- VmRSS              : {rss_mb} MB")
        log(f"+ RssAnnon           : {rss_mb - shared_mb} MB")
        log(f"+ RssFile + RssShmem : {shared_mb} MB")


def _phase(
    invoke: Callable[[], None],
    min_runs: int,
    min_secs: float,
    max_secs: float,
    log: Log,
    percentiles: bool,
) -> Stat:
    log(
        f"Running benchmark for at least {min_runs} iterations and at least "
        f"{cpp_double(min_secs)} seconds but terminate if exceeding {cpp_double(max_secs)} "
        "seconds."
    )
    now = _now_us()
    min_finish, max_finish = now + int(min_secs * 1e6), now + int(max_secs * 1e6)
    times: list[int] = []
    run = 0
    while (run < min_runs or now < min_finish) and now <= max_finish:
        start = _now_us()
        invoke()
        end = _now_us()
        times.append(end - start)
        now = end
        run += 1
    if not times:
        # benchmark_model prints count=0 and then divides by nothing; no sane agent gets here.
        log("count=0\n")
        raise RuntimeError("no runs were made")
    log(Stat(times).line(percentiles) + "\n")
    return Stat(times)


def _now_us() -> int:
    return time.perf_counter_ns() // 1000


def _max_rss_kb() -> int:
    """``mem_footprint_kb`` as memory_info.cc takes it on Linux, ``getrusage``'s ru_maxrss, of
    this program alone: VmHWM, since ru_maxrss carries over exec the resident set of the agent
    that forked the fake adb (a phone's benchmark_model starts fresh from adbd's shell)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _statm_pages(field: int) -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[field])
    except (OSError, ValueError, IndexError):
        return 0


class _PeakMonitor:
    """TFLite's MemoryUsageMonitor: a thread that samples the footprint until stopped."""

    def __init__(self, interval_s: float) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, _max_rss_kb())
            if self._stop.wait(interval_s):
                self.peak_kb = max(self.peak_kb, _max_rss_kb())
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return cpp_double(value)
    return str(value)
