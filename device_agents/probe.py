"""A speed probe: a small fixed model timed just before and after each measurement.

If the machine is slowed around a timing window (a neighbour's burst, heat), the probe beside
it is slowed too; compared with its own recent baseline it tells a disturbed window from a
quiet one (see :mod:`device_agents.quality`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from device_agents.quality import ProbeBaseline
from device_agents.runners import Runner, RuntimeOptions, pinned
from models import parse

# Small enough to cost well under a millisecond a reading, big enough to run the same
# vectorised kernels (1x1 and depthwise convolutions) as the models it watches.
PROBE_KEY = parse("mbconv_hw16_i16_o16_k3_e3_s1")
PROBE_INVOKES = 5


class SpeedProbe:
    def __init__(self, runner: Runner, model: Path, options: RuntimeOptions) -> None:
        self._options = options
        with pinned(options.cpu_affinity):
            self._invoke: Callable[[], None] = runner.prepare(model, options, seed=0)
            for _ in range(20):  # warm up the kernels and the caches once
                self._invoke()
        # One baseline per side: what ran just before a reading (a model's loading, or its
        # timed runs) shifts the probe's time, so each side is compared with its own kind.
        self.before = ProbeBaseline()
        self.after = ProbeBaseline()

    def read_ms(self) -> float:
        """The fastest of a few invocations: what the machine can do right now."""
        best = float("inf")
        with pinned(self._options.cpu_affinity):
            for _ in range(PROBE_INVOKES):
                started = time.perf_counter_ns()
                self._invoke()
                best = min(best, (time.perf_counter_ns() - started) / 1e6)
        return best

    def ratio_and_learn(self, before_ms: float, after_ms: float) -> float | None:
        """The slower side against its baseline (taken before adding the readings to it)."""
        ratios = [
            r for r in (self.before.ratio(before_ms), self.after.ratio(after_ms)) if r is not None
        ]
        self.before.add(before_ms)
        self.after.add(after_ms)
        return max(ratios) if ratios else None
