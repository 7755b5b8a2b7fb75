"""The names of the accuracy figures: what a validation report, its baselines and its noise
floor hold, and what the dashboard, the command line and the reports read back.

One enum, so that the service that writes a figure and every reader name it alike (a
``StrEnum`` member is its string: the stored JSON keys stay ``"mape"``, ``"within_5pct"``...).
Pure Python, no NumPy: the client's schemas use it too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Metric(StrEnum):
    N = "n"
    WITHIN_5PCT = "within_5pct"
    WITHIN_10PCT = "within_10pct"
    MAPE = "mape"
    RMSE_MS = "rmse_ms"
    KENDALL_TAU = "kendall_tau"
    BIAS_PCT = "bias_pct"
    # The noise floor's counts: networks measured more than once, and pass-vs-rest comparisons.
    NETWORKS = "networks"
    COMPARISONS = "comparisons"


# Scored alike for a predictor and for the measurement against itself.
HIT_RATES: Final = (Metric.WITHIN_5PCT, Metric.WITHIN_10PCT, Metric.MAPE)
# A predictor's (or a baseline's) figures on a validation's networks, after its count.
FIGURES: Final = (*HIT_RATES, Metric.RMSE_MS, Metric.KENDALL_TAU, Metric.BIAS_PCT)
ACCURACY: Final = (Metric.N, *FIGURES)
NOISE_FLOOR: Final = (Metric.NETWORKS, Metric.COMPARISONS, *HIT_RATES)
