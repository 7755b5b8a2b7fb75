"""Timing statistics in milliseconds, the shape the service stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class TimingStatistics:
    count: int
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float | None = None
    # Older benchmark_model builds print no median; their average stands in and this says so.
    median_is_average: bool = False

    @classmethod
    def from_samples_ms(cls, samples_ms: Sequence[float]) -> TimingStatistics:
        if len(samples_ms) == 0:
            raise ValueError("no timed runs to summarise")
        values = np.asarray(samples_ms, dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError("timings must be finite and positive")
        return cls(
            count=int(values.size),
            median_ms=float(np.median(values)),
            mean_ms=float(values.mean()),
            std_ms=float(values.std()),
            min_ms=float(values.min()),
            max_ms=float(values.max()),
            p90_ms=float(np.percentile(values, 90)),
        )

    def as_measurement(self) -> dict[str, Any]:
        """The fields of a service measurement (``Statistics`` on the wire)."""
        return asdict(self)
