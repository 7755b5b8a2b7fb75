"""The accuracy figures are written under the names everybody reads them by."""

from __future__ import annotations

from predictor import accuracy as scores
from predictor.metrics import ACCURACY, NOISE_FLOOR, Metric


def test_a_validation_holds_exactly_the_named_figures() -> None:
    figures = scores.accuracy([1.0, 2.1, 2.9], [1.0, 2.0, 3.0])
    assert list(figures) == list(ACCURACY)
    assert all(isinstance(name, Metric) for name in figures)


def test_the_noise_floor_holds_its_counts_and_the_hit_rates() -> None:
    assert list(scores.test_retest([(1.0, 1.02, 0.99), (2.0, 2.1)])) == list(NOISE_FLOOR)
    assert scores.test_retest([(1.0,)]) == {Metric.NETWORKS: 0, Metric.COMPARISONS: 0}
