"""The calibration formula's one home: the same numbers on floats and on arrays, and the fixed
parts counted exactly once."""

from __future__ import annotations

import numpy as np
import pytest

from latency_api.schemas.predictors import TableCalibration
from predictor.artifact import Calibration
from predictor.calibration import calibrated_ms, calibrated_offset_ms, calibrated_uncertainty_ms


def test_fixed_parts_join_the_sum_only_when_the_calibration_says_so() -> None:
    inside = TableCalibration(a=1.1, b=0.5, fixed_in_sum=True)
    constant = TableCalibration(a=1.1, b=0.5, fixed_in_sum=False)
    assert calibrated_ms(inside, 10.0, 2.0) == pytest.approx(1.1 * 12.0 + 0.5)
    assert calibrated_ms(constant, 10.0, 2.0) == pytest.approx(1.1 * 10.0 + 0.5)
    assert calibrated_ms(inside, 10.0) == pytest.approx(1.1 * 10.0 + 0.5)
    assert calibrated_offset_ms(inside, 2.0) == pytest.approx(1.1 * 2.0 + 0.5)
    assert calibrated_offset_ms(constant, 2.0) == 0.5


def test_floats_and_arrays_give_the_same_latency_and_uncertainty() -> None:
    cal = Calibration(a=1.05, b=0.3, residual_rms_rel=0.02)
    sums, var = np.array([3.0, 7.5, 12.25]), np.array([0.01, 0.04, 0.0])
    latency = calibrated_ms(cal, sums, 1.5)
    spread = calibrated_uncertainty_ms(cal, latency, var, 0.02)
    for i in range(len(sums)):
        one = calibrated_ms(cal, float(sums[i]), 1.5)
        assert one == pytest.approx(float(latency[i]), rel=1e-15)
        assert calibrated_uncertainty_ms(cal, one, float(var[i]), 0.02) == pytest.approx(
            float(spread[i]), rel=1e-15
        )
    expected = np.sqrt(1.05**2 * (var + 0.02) + (latency * 0.02) ** 2)
    np.testing.assert_allclose(spread, expected, rtol=1e-15)
