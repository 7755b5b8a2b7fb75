"""Accuracy of latency predictions against measurements (pure)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from predictor.metrics import Metric


def accuracy(predicted_ms: npt.ArrayLike, measured_ms: npt.ArrayLike) -> dict[str, Any]:
    """±5% / ±10% hit rates, MAPE, RMSE and Kendall's τ (rank agreement, what a search needs)."""
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if predicted.shape != measured.shape or predicted.size == 0:
        raise ValueError(
            f"need equally many predictions and measurements, got {predicted.size} and "
            f"{measured.size}"
        )
    if np.any(measured <= 0) or not np.all(np.isfinite(predicted)):
        raise ValueError("measurements must be positive and predictions finite")
    relative = np.abs(predicted - measured) / measured
    from scipy.stats import kendalltau  # here: SciPy's statistics take a second to import

    tau = float(kendalltau(predicted, measured).statistic) if predicted.size > 1 else math.nan
    return {
        Metric.N: int(predicted.size),
        **hit_rates(relative),
        Metric.RMSE_MS: float(np.sqrt(np.mean((predicted - measured) ** 2))),
        # Undefined when either side has no variation (a tie everywhere): None, not NaN, which
        # JSON (and PostgreSQL's json type) cannot hold.
        Metric.KENDALL_TAU: tau if math.isfinite(tau) else None,
        Metric.BIAS_PCT: float(100 * np.mean((predicted - measured) / measured)),
    }


def test_retest(passes_ms: list[tuple[float, ...]]) -> dict[str, Any]:
    """How well the measurement agrees with itself: each pass of a network against the median of
    its other passes, scored like a predictor (the noise floor under any predictor's figures).

    Networks measured once tell nothing and are left out.
    """
    repeated = [values for values in passes_ms if len(values) >= 2]
    errors = []
    for values in repeated:
        for i, value in enumerate(values):
            others = float(np.median([v for j, v in enumerate(values) if j != i]))
            errors.append(abs(value - others) / others)
    if not errors:
        return {Metric.NETWORKS: 0, Metric.COMPARISONS: 0}
    relative = np.asarray(errors)
    return {
        Metric.NETWORKS: len(repeated),
        Metric.COMPARISONS: int(relative.size),
        **hit_rates(relative),
    }


def hit_rates(relative: npt.ArrayLike) -> dict[str, float]:
    """±5% and ±10% shares and MAPE of relative errors (|predicted - measured| / measured):
    scored alike for predictor, measurement and held-out layers."""
    errors = np.asarray(relative, dtype=np.float64)
    return {
        Metric.WITHIN_5PCT: float(np.mean(errors <= 0.05)),
        Metric.WITHIN_10PCT: float(np.mean(errors <= 0.10)),
        Metric.MAPE: float(100 * np.mean(errors)),
    }
