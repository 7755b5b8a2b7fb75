"""Parser for what TFLite's ``benchmark_model`` prints (pure: text in, numbers out).

Builds differ (``tests/data/benchmark_model_outputs.txt`` has one sample of each form):
lines may carry an ``INFO: `` or logcat prefix; statistics lines give ``count= first= curr=
min= max= avg= std=`` in microseconds, newer builds add ``p5= median= p95=``, older ones print
averages in scientific notation, identical runs print ``curr=80000(all same)``; a summary line
``Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference (avg): ..``
follows, then memory. Anything that does not add up raises :class:`BenchmarkOutputError`:
a wrong number is worse than none.

Memory comes in three forms (sources in ``tests/data/README.md``): older builds print
``Peak memory footprint (MB): init=.. overall=..`` (growth of the process's maximum resident set,
``ru_maxrss``, since the tool started); newer ones call the same figures ``Memory footprint delta
from the start of the tool (MB)``; with ``--report_peak_memory_footprint=true`` they add
``Overall peak memory footprint (MB) via periodic monitoring: ..``, the largest ``ru_maxrss`` a
polling thread saw (the whole process, tool included, not a delta). TFLite's MB are MiB
(kilobytes / 1024.0).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from device_agents.statistics import TimingStatistics
from models.units import BYTES_PER_MB

US_PER_MS: Final = 1000.0

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FIELD_RE: Final = re.compile(rf"\b(count|first|curr|min|max|avg|std|p5|median|p95)=({_NUMBER})")
_ALL_SAME_RE: Final = re.compile(rf"\bcurr=({_NUMBER})\(all same\)")
_RUNNING_RE: Final = re.compile(r"Running benchmark for at least (\d+) iterations")
_SUMMARY_RE: Final = re.compile(
    rf"Inference timings in us: Init: ({_NUMBER}), First inference: ({_NUMBER}), "
    rf"Warmup \(avg\): ({_NUMBER}), Inference \(avg\): ({_NUMBER})"
)
_MEMORY_RE: Final = re.compile(
    rf"(Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
    rf"init=({_NUMBER}) overall=({_NUMBER})"
)
_PEAK_RE: Final = re.compile(
    rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUMBER})"
)

# What each memory line measures, as stored in memory_method (at most 200 characters).
PEAK_METHOD: Final = (
    "benchmark_model --report_peak_memory_footprint: 'Overall peak memory footprint (MB) via "
    "periodic monitoring', the process's peak ru_maxrss (tool included), separate run"
)
DELTA_METHODS: Final = {
    "Memory footprint delta from the start of the tool": (
        "benchmark_model 'Memory footprint delta from the start of the tool (MB)' overall: "
        "growth of ru_maxrss over the run, separate run"
    ),
    "Peak memory footprint": (
        "benchmark_model (older build) 'Peak memory footprint (MB)' overall: growth of "
        "ru_maxrss over the run, separate run"
    ),
}


class BenchmarkOutputError(ValueError):
    """The text is not complete, consistent benchmark_model output."""


@dataclass(frozen=True, slots=True)
class RunStatistics:
    """One statistics line, in microseconds."""

    count: int
    min_us: float
    max_us: float
    avg_us: float
    std_us: float
    median_us: float | None = None
    p5_us: float | None = None
    p95_us: float | None = None
    first_us: float | None = None

    @property
    def median_or_avg_us(self) -> float:
        return self.median_us if self.median_us is not None else self.avg_us


@dataclass(frozen=True, slots=True)
class BenchmarkOutput:
    inference: RunStatistics | None
    warmup: RunStatistics | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    # Which line the two figures above came from (a key of DELTA_METHODS).
    memory_line: str | None = None
    # The polling thread's peak (--report_peak_memory_footprint), on builds that have one.
    peak_memory_mb: float | None = None

    @property
    def inferences(self) -> int:
        """Every inference the run made, warm-up included (all of them drew energy)."""
        return sum(s.count for s in (self.warmup, self.inference) if s is not None)

    def peak_memory(self) -> tuple[int, str]:
        """The memory figure hwlat stores, in bytes, and which line it came from: the polling
        thread's peak when the build printed one, else the overall footprint delta."""
        if self.peak_memory_mb is not None:
            return round(self.peak_memory_mb * BYTES_PER_MB), PEAK_METHOD
        if self.memory_overall_mb is not None and self.memory_line is not None:
            return round(self.memory_overall_mb * BYTES_PER_MB), DELTA_METHODS[self.memory_line]
        raise BenchmarkOutputError(
            "no memory line in the output (neither 'Overall peak memory footprint' nor a "
            "footprint delta): this build does not report memory on this platform"
        )

    def statistics(self) -> TimingStatistics:
        """The timed runs as the service's statistics (ms).

        Builds without percentiles print no median; then ``median_ms`` is the average and
        ``median_is_average`` says so, so that callers can decide rather than be misled.
        """
        stats = self.inference
        if stats is None:
            raise BenchmarkOutputError(
                "the output has only the averages summary (as an Android app build logs it), no "
                "per-run statistics; run the benchmark_model command-line binary instead"
            )
        return TimingStatistics(
            count=stats.count,
            median_ms=stats.median_or_avg_us / US_PER_MS,
            mean_ms=stats.avg_us / US_PER_MS,
            std_ms=stats.std_us / US_PER_MS,
            min_ms=stats.min_us / US_PER_MS,
            max_ms=stats.max_us / US_PER_MS,
            median_is_average=stats.median_us is None,
        )


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Read benchmark_model's output; raise :class:`BenchmarkOutputError` if it is unusable."""
    lines = [line.rstrip() for line in text.splitlines()]
    stats_blocks: list[tuple[int | None, RunStatistics]] = []
    expected_runs: int | None = None
    pending_header = False
    summary: tuple[float, ...] | None = None
    memory: tuple[float, ...] | None = None
    memory_line: str | None = None
    peak_mb: float | None = None
    for number, line in enumerate(lines, start=1):
        if match := _RUNNING_RE.search(line):
            if pending_header:
                raise BenchmarkOutputError(
                    f"line {number}: a new benchmark phase starts before the previous one "
                    "printed its statistics"
                )
            expected_runs, pending_header = int(match[1]), True
        elif "count=" in line:
            stats_blocks.append(
                (expected_runs if pending_header else None, _parse_statistics(line, number))
            )
            pending_header = False
        elif match := _SUMMARY_RE.search(line):
            summary = tuple(_finite(v, number) for v in match.groups())
        elif "Inference timings in us" in line:
            raise BenchmarkOutputError(f"line {number}: truncated timings summary: {line!r}")
        elif match := _MEMORY_RE.search(line):
            memory_line = match[1]
            memory = tuple(_finite(v, number) for v in match.groups()[1:])
        elif match := _PEAK_RE.search(line):
            peak_mb = _finite(match[1], number)
            if peak_mb <= 0:
                # The tool prints the line only for a positive peak; anything else is corrupt.
                raise BenchmarkOutputError(f"line {number}: a peak memory of {peak_mb:g} MB")
        elif "Overall peak memory footprint" in line:
            raise BenchmarkOutputError(f"line {number}: truncated peak memory line: {line!r}")
    if pending_header:
        raise BenchmarkOutputError(
            "the output ends after 'Running benchmark...' without its statistics: the run was "
            "cut short (timeout, crash or unplugged device?)"
        )
    if not stats_blocks and summary is None:
        raise BenchmarkOutputError(
            "no benchmark statistics found (no 'count=' line and no 'Inference timings in us' "
            "line); is this benchmark_model output?"
        )
    inference = stats_blocks[-1][1] if stats_blocks else None
    warmup = stats_blocks[-2][1] if len(stats_blocks) >= 2 else None
    if stats_blocks:
        wanted, _ = stats_blocks[-1]
        if wanted is not None and inference is not None and inference.count < wanted:
            raise BenchmarkOutputError(
                f"the timed phase asked for at least {wanted} runs but reports count="
                f"{inference.count}"
            )
    if summary is not None and inference is not None:
        _check_summary_matches(summary[3], inference.avg_us)
    return BenchmarkOutput(
        inference=inference,
        warmup=warmup,
        init_us=summary[0] if summary else None,
        first_inference_us=summary[1] if summary else None,
        warmup_avg_us=summary[2] if summary else None,
        inference_avg_us=summary[3] if summary else None,
        memory_init_mb=memory[0] if memory else None,
        memory_overall_mb=memory[1] if memory else None,
        memory_line=memory_line,
        peak_memory_mb=peak_mb,
    )


def _parse_statistics(line: str, number: int) -> RunStatistics:
    fields: dict[str, float] = {}
    for name, value in _FIELD_RE.findall(line):
        if name in fields:
            raise BenchmarkOutputError(f"line {number}: {name}= appears twice: {line!r}")
        fields[name] = _finite(value, number)
    if "count" not in fields or fields["count"] < 1 or not fields["count"].is_integer():
        raise BenchmarkOutputError(f"line {number}: no valid count= in {line!r}")
    count = int(fields["count"])
    if same := _ALL_SAME_RE.search(line):
        value = _finite(same[1], number)
        _positive(value, "curr", number)
        return RunStatistics(
            count,
            value,
            value,
            value,
            0.0,
            median_us=value,
            p5_us=value,
            p95_us=value,
            first_us=value,
        )
    if count == 1 and set(fields) <= {"count", "curr", "p5", "median", "p95"} and "curr" in fields:
        # A single run prints only curr= (plus percentiles that all equal it).
        value = fields["curr"]
        _positive(value, "curr", number)
        return RunStatistics(1, value, value, value, 0.0, median_us=value, first_us=value)
    missing = [name for name in ("min", "max", "avg", "std") if name not in fields]
    if missing:
        raise BenchmarkOutputError(
            f"line {number}: statistics line lacks {', '.join(f'{m}=' for m in missing)} "
            f"(truncated?): {line!r}"
        )
    for name in ("min", "max", "avg", "median", "p5", "p95", "first"):
        if name in fields:
            _positive(fields[name], name, number)
    if fields["std"] < 0:
        raise BenchmarkOutputError(f"line {number}: negative std={fields['std']}")
    low, high = fields["min"], fields["max"]
    # Scientific notation keeps 6 significant digits, so allow that much rounding.
    slack = 1e-5 * high
    for name in ("avg", "median", "p5", "p95"):
        if name in fields and not low - slack <= fields[name] <= high + slack:
            raise BenchmarkOutputError(
                f"line {number}: {name}={fields[name]:g} lies outside min={low:g}..max={high:g}"
            )
    return RunStatistics(
        count=count,
        min_us=low,
        max_us=high,
        avg_us=fields["avg"],
        std_us=fields["std"],
        median_us=fields.get("median"),
        p5_us=fields.get("p5"),
        p95_us=fields.get("p95"),
        first_us=fields.get("first"),
    )


def _check_summary_matches(summary_avg_us: float, stats_avg_us: float) -> None:
    if not math.isclose(summary_avg_us, stats_avg_us, rel_tol=1e-4):
        raise BenchmarkOutputError(
            f"the summary's Inference (avg) {summary_avg_us:g} us disagrees with the statistics "
            f"line's avg={stats_avg_us:g} us; the output mixes two runs"
        )


def _finite(text: str, number: int) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BenchmarkOutputError(f"line {number}: non-finite number {text!r}")
    return value


def _positive(value: float, name: str, number: int) -> None:
    if value <= 0:
        raise BenchmarkOutputError(f"line {number}: {name}={value:g} is not a positive time")
