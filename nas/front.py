"""Pareto fronts of (accuracy up, latency down) and their two-dimensional hypervolume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    architecture: tuple[int, ...]
    accuracy: float
    latency_ms: float


def pareto_front(points: Sequence[Scored]) -> list[Scored]:
    """The points no other point beats on both objectives, fastest first.

    Ties (equal accuracy and latency) keep the first; a point is dominated if another is at
    least as accurate and at least as fast, and better in one.
    """
    front: list[Scored] = []
    best_accuracy = float("-inf")
    for point in sorted(points, key=lambda p: (p.latency_ms, -p.accuracy)):
        if point.accuracy > best_accuracy:
            front.append(point)
            best_accuracy = point.accuracy
    return front


def hypervolume(points: Sequence[Scored], reference_accuracy: float, reference_ms: float) -> float:
    """Area (accuracy x ms) dominated by ``points`` and bounded by the reference point.

    Points less accurate than ``reference_accuracy`` or slower than ``reference_ms`` add
    nothing. With latency in ms the unit is accuracy-milliseconds.
    """
    inside = [
        p for p in points if p.accuracy >= reference_accuracy and p.latency_ms <= reference_ms
    ]
    front = pareto_front(inside)  # latency ascending, accuracy ascending
    area = 0.0
    for n, point in enumerate(front):
        next_ms = front[n + 1].latency_ms if n + 1 < len(front) else reference_ms
        area += (point.accuracy - reference_accuracy) * (next_ms - point.latency_ms)
    return area
