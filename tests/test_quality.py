"""The quality gate's judgements, on hand-made evidence (the pure part of device_agents)."""

from __future__ import annotations

import pytest

from device_agents.quality import Evidence, Gate, ProbeBaseline, tail_ratio


def test_a_slowed_probe_or_a_long_tail_rejects_a_window() -> None:
    gate = Gate(probe_limit=1.12, tail_limit=1.15)
    assert gate.judge(Evidence(probe_ratio=1.05, tail_ratio=1.03)).accepted
    slow = gate.judge(Evidence(probe_ratio=1.3, tail_ratio=1.01))
    assert not slow.accepted
    assert slow.reason is not None
    assert "speed probe 1.30x" in slow.reason
    tail = gate.judge(Evidence(probe_ratio=1.0, tail_ratio=1.4))
    assert not tail.accepted
    assert tail.reason is not None
    assert "10th percentile" in tail.reason
    assert gate.judge(Evidence()).accepted  # nothing observed: nothing to hold against it
    assert Gate(probe_limit=None).judge(Evidence(probe_ratio=9.0)).accepted


def test_a_repeat_far_above_the_others_is_the_outlier() -> None:
    gate = Gate(repeat_limit=1.06)
    assert gate.outliers([1.00, 1.01, 1.30]) == [2]
    assert gate.outliers([1.00, 1.01, 1.02]) == []
    # Two of three disturbed: each is far above the middle of the other two.
    assert gate.outliers([1.30, 1.31, 1.00]) == [0, 1]
    assert gate.outliers([1.0, 1.5]) == []  # two repeats cannot say which one was disturbed
    assert gate.outliers([1.0, 1.0, 1.0, 1.07, 1.2]) == [3, 4]


def test_the_probe_baseline_ignores_a_burst_and_follows_drift() -> None:
    baseline = ProbeBaseline(window=20)
    assert baseline.ratio(1.0) is None  # too few readings yet
    for _ in range(14):
        baseline.add(0.10)
    for _ in range(6):  # a burst: a minority of the window
        baseline.add(0.14)
    assert baseline.ratio(0.14) == pytest.approx(1.4)
    for _ in range(20):  # the machine got slower for good: the baseline follows
        baseline.add(0.12)
    assert baseline.ratio(0.12) == pytest.approx(1.0)


def test_tail_ratio_is_the_median_over_the_tenth_percentile() -> None:
    assert tail_ratio([1.0] * 9) is None
    runs = [1.0] * 10 + [2.0] * 10
    assert tail_ratio(runs) == pytest.approx(1.5)
    assert tail_ratio(list(range(1, 21))) == pytest.approx(10.5 / 2)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"probe_limit": 1.0}, "probe_limit"), ({"repeat_limit": 0.9}, "repeat_limit")],
)
def test_nonsense_limits_are_refused(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Gate(**kwargs)  # type: ignore[arg-type]
