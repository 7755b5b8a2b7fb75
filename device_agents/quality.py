"""Whether a measurement can be trusted: the evidence it carries and the verdict on it (pure).

On a shared machine (and on a phone that heats up) the noise comes in bursts of a second or two
that slow everything by 20-50%. A timing window of a few hundred milliseconds falls wholly
inside such a burst or wholly outside it, so the spread of its own runs rarely shows it. What
does show it:

- a *speed probe*: a fixed small workload timed just before and just after the window. A burst
  longer than the window that touches the window also touches one of the probes, and slows it
  as it slows the model. Hosts only.
- the window's *tail*: its median against a low percentile, for bursts that start or end inside
  a longer window (phones print the percentiles or min/avg).
- *disagreement between repeats*: the same model measured in interleaved passes, seconds
  apart; a pass far above the others' median was hit by something the others were not.

A measurement that shows a burst is rejected and measured again later; every attempt is
stored with its verdict and evidence, and only accepted ones feed fits and validations. The
thresholds come from the interference benchmark (``scripts/bench_interference.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

# Chosen from docs/bench/interference.json (see docs/benchmarks.md): the smallest thresholds
# that flag almost no window of a quiet machine while catching the bursts that inflate a
# median by more than ~4%.
DEFAULT_PROBE_LIMIT: Final = 1.12
DEFAULT_TAIL_LIMIT: Final = 1.15
DEFAULT_REPEAT_LIMIT: Final = 1.06


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one timing window says about its own conditions; None where not observable."""

    probe_ratio: float | None = None  # slower of the two probes / the probe's baseline
    tail_ratio: float | None = None  # median / 10th percentile of the window's runs
    other_cpu: float | None = None  # other processes' share of the CPUs during the window
    steal: float | None = None  # the hypervisor's steal share during the window

    def as_dict(self) -> dict[str, float]:
        return {
            name: value
            for name, value in (
                ("probe_ratio", self.probe_ratio),
                ("tail_ratio", self.tail_ratio),
                ("other_cpu", self.other_cpu),
                ("steal", self.steal),
            )
            if value is not None and math.isfinite(value)
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    reason: str | None = None

    @classmethod
    def ok(cls) -> Verdict:
        return cls(True)


@dataclass(frozen=True, slots=True)
class Gate:
    """The limits a window must keep to be accepted; None disables a check."""

    probe_limit: float | None = DEFAULT_PROBE_LIMIT
    tail_limit: float | None = DEFAULT_TAIL_LIMIT
    repeat_limit: float | None = DEFAULT_REPEAT_LIMIT
    # Extra attempts per model, and per job as a share of its measurements: a machine that is
    # never quiet must not re-measure forever.
    max_retries_per_target: int = 2
    max_retry_share: float = 0.5
    # A model left with no accepted window at all after its passes is measured up to this many
    # more times (still within the job's share): without any accepted value the fit would have
    # to estimate a layer that was in fact measured, and a validation network would be lost.
    rescue_attempts: int = 3

    def __post_init__(self) -> None:
        for name in ("probe_limit", "tail_limit", "repeat_limit"):
            value = getattr(self, name)
            if value is not None and value <= 1.0:
                raise ValueError(f"{name}={value}; a limit is a ratio above 1 (e.g. 1.1)")
        if (
            self.max_retries_per_target < 0
            or self.rescue_attempts < 0
            or not 0 <= self.max_retry_share <= 10
        ):
            raise ValueError("retry bounds must be non-negative")

    def judge(self, evidence: Evidence) -> Verdict:
        """The verdict on one window from its own evidence."""
        if (
            self.probe_limit is not None
            and evidence.probe_ratio is not None
            and evidence.probe_ratio > self.probe_limit
        ):
            return Verdict(
                False,
                f"speed probe {evidence.probe_ratio:.2f}x its baseline "
                f"(limit {self.probe_limit:.2f}x): the machine was slowed around the window",
            )
        if (
            self.tail_limit is not None
            and evidence.tail_ratio is not None
            and evidence.tail_ratio > self.tail_limit
        ):
            return Verdict(
                False,
                f"median {evidence.tail_ratio:.2f}x the 10th percentile (limit "
                f"{self.tail_limit:.2f}x): part of the window ran slow",
            )
        return Verdict.ok()

    def outliers(self, medians_ms: Sequence[float]) -> list[int]:
        """Positions of repeats well above the median of the *other* repeats of one model.

        Needs three repeats: with two, which one was disturbed cannot be told.
        """
        if self.repeat_limit is None or len(medians_ms) < 3:
            return []
        out = []
        for i, value in enumerate(medians_ms):
            others = sorted(v for j, v in enumerate(medians_ms) if j != i)
            middle = len(others) // 2
            center = (
                others[middle] if len(others) % 2 else 0.5 * (others[middle - 1] + others[middle])
            )
            if value > self.repeat_limit * center:
                out.append(i)
        return out


# Every agent gates by default (in process or not); --no-gate is the one way to turn it off.
DEFAULT_GATE: Final = Gate()


def gate_for(enabled: bool) -> Gate | None:
    """The gate a ``--gate/--no-gate`` flag asks for."""
    return DEFAULT_GATE if enabled else None


@dataclass
class ProbeBaseline:
    """The probe's usual time: the median of its recent readings.

    Bursts last a second or two and probes come every few hundred milliseconds, so a burst is
    a minority of the readings and the median ignores it; a load that stays (a slower machine
    for minutes) moves the median with it, and is no burst to re-measure around.
    """

    window: int = 60
    quantile: float = 0.5
    _readings: deque[float] = field(default_factory=deque, init=False, repr=False)

    def add(self, reading_ms: float) -> None:
        self._readings.append(reading_ms)
        while len(self._readings) > self.window:
            self._readings.popleft()

    def ratio(self, reading_ms: float) -> float | None:
        """``reading_ms`` against the baseline; None until there are enough readings."""
        if len(self._readings) < 5:
            return None
        ordered = sorted(self._readings)
        base = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]
        return reading_ms / base if base > 0 else None


def tail_ratio(samples_ms: Sequence[float]) -> float | None:
    """Median over the 10th percentile of a window's runs (None below 10 runs)."""
    if len(samples_ms) < 10:
        return None
    ordered = sorted(samples_ms)
    n = len(ordered)
    median = 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])
    low = ordered[int(0.1 * (n - 1))]
    return median / low if low > 0 else None
