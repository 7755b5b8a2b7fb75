"""The current value of a layer from its history: a median with outliers flagged (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Iglewicz & Hoaglin: |0.6745 (x - median) / MAD| > 3.5 marks an outlier.
MODIFIED_Z_LIMIT = 3.5
# Below 1% of the median, MAD reflects timer resolution, not noise; without a floor a history
# of near-identical values would flag a 0.5% deviation as an outlier.
MIN_MAD_FRACTION = 0.01


def robust_aggregate(medians_ms: Sequence[float]) -> tuple[float, float, tuple[int, ...]]:
    """(median of the inliers, MAD of all values, positions of the outliers)."""
    if not medians_ms:
        raise ValueError("cannot aggregate an empty history")
    values = np.asarray(medians_ms, dtype=np.float64)
    center = float(np.median(values))
    mad = float(np.median(np.abs(values - center)))
    scale = max(mad, MIN_MAD_FRACTION * center)
    z = 0.6745 * np.abs(values - center) / scale
    outliers = tuple(int(i) for i in np.flatnonzero(z > MODIFIED_Z_LIMIT))
    inliers = np.delete(values, outliers) if outliers else values
    return float(np.median(inliers)), mad, outliers
