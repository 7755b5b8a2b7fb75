"""Pareto fronts of accuracy (maximised) against device metrics (minimised), and hypervolumes.

Everything is computed in one general form: each point becomes a vector of minimised values,
accuracy entering as its negation, and the front and the hypervolume are those of the vectors.
The two-objective functions (accuracy against latency) are that form's first case.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.objectives import DEFAULT_OBJECTIVES, Objective


@dataclass(frozen=True)
class Scored:
    architecture: tuple[int, ...]
    accuracy: float
    latency_ms: float
    # None when not predicted (the search did not use the metric).
    peak_memory_mb: float | None = None
    energy_mj: float | None = None

    def value(self, metric: Objective) -> float:
        value: float | None = getattr(self, metric.field)
        if value is None:
            raise ValueError(f"{metric.field} of {self.architecture} was not predicted")
        return value

    def metric_values(self) -> dict[Objective, float | None]:
        return {m: getattr(self, m.field) for m in Objective}

    def minimised(self, metrics: Sequence[Objective]) -> tuple[float, ...]:
        """The point as minimised values: accuracy negated, then each metric."""
        return (-self.accuracy, *(self.value(m) for m in metrics))


@dataclass(frozen=True)
class Reference:
    """A hypervolume's reference point: the least accuracy and the most of each metric."""

    accuracy: float
    worst: tuple[tuple[Objective, float], ...]

    @classmethod
    def beyond_worst(
        cls,
        point_sets: Iterable[Sequence[Scored]],
        metrics: Sequence[Objective],
        factor: float = 1.1,
    ) -> Reference | None:
        """Accuracy 0 and, per metric, ``factor`` x its worst value over every set: one point
        that all the sets share, so their hypervolumes compare. None when the sets are empty."""
        points = [p for s in point_sets for p in s]
        if not points:
            return None
        return cls(0.0, tuple((m, factor * max(p.value(m) for p in points)) for m in metrics))

    def minimised(self) -> tuple[float, ...]:
        return (-self.accuracy, *(v for _, v in self.worst))

    def metrics(self) -> tuple[Objective, ...]:
        return tuple(m for m, _ in self.worst)

    def to_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, **{m.field: v for m, v in self.worst}}


def non_dominated(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the vectors (all values minimised) no other vector dominates, in input order.

    A vector is dominated if another is at most as large everywhere and smaller somewhere; of
    equal vectors the first is kept."""
    if not vectors:
        return []
    v = np.asarray(vectors, dtype=float)
    kept = []
    for i, row in enumerate(v):
        at_most = np.all(v <= row, axis=1)
        dominated = at_most & np.any(v < row, axis=1)
        earlier_equal = at_most & np.all(v == row, axis=1)
        earlier_equal[i:] = False
        if not (dominated.any() or earlier_equal.any()):
            kept.append(i)
    return kept


def hypervolume_of(vectors: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Volume dominated by ``vectors`` (minimised) and bounded by ``reference``, exactly.

    Hypervolume by slicing objectives (While et al., 2006): slabs along the last objective, each
    the hypervolume of the points below it in one dimension fewer. Exponential in the number of
    objectives, fine for fronts of a few hundred points and four objectives. Points beyond the
    reference in any objective add nothing."""
    ref = tuple(float(r) for r in reference)
    if any(len(p) != len(ref) for p in vectors):
        raise ValueError(f"every point needs {len(ref)} values, as the reference has")
    points = [tuple(float(x) for x in p) for p in vectors]
    return _slice([p for p in points if all(x <= r for x, r in zip(p, ref, strict=True))], ref)


def _slice(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    if len(ref) == 2:
        return _staircase(sorted(points), ref)
    if len(ref) == 3:
        return _sweep_3d(points, ref)
    volume = 0.0
    ordered = sorted((points[i] for i in non_dominated(points)), key=lambda p: p[-1])
    for n, point in enumerate(ordered):
        top = ordered[n + 1][-1] if n + 1 < len(ordered) else ref[-1]
        if top > point[-1]:
            below = [p[:-1] for p in ordered[: n + 1]]
            volume += (top - point[-1]) * _slice(below, ref[:-1])
    return volume


def _staircase(points: Sequence[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    """Area of 2-D points sorted by their first value: each adds the band below the last."""
    area, ceiling = 0.0, ref[1]
    for x, y in points:
        if y < ceiling:
            area += (ref[0] - x) * (ceiling - y)
            ceiling = y
    return area


def _sweep_3d(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    """Slabs along the third value, keeping the 2-D points below the slab sorted (by insertion)
    rather than sorting them again per slab: the slices' base case, so it sets their speed."""
    volume = 0.0
    ordered = sorted(points, key=lambda p: p[2])
    plane: list[tuple[float, float]] = []
    for n, (x, y, z) in enumerate(ordered):
        bisect.insort(plane, (x, y))
        top = ordered[n + 1][2] if n + 1 < len(ordered) else ref[2]
        if top > z:
            volume += (top - z) * _staircase(plane, ref)
    return volume


def pareto_front(
    points: Sequence[Scored], metrics: Sequence[Objective] = DEFAULT_OBJECTIVES
) -> list[Scored]:
    """The points no other point beats on every objective, ordered by the metrics in turn
    (with the default, latency only: fastest first), then by accuracy, best first.

    A point is dominated if another is at least as accurate and at most as large on every
    metric, and better in one; of equal points the first is kept."""
    vectors = [p.minimised(metrics) for p in points]
    kept = non_dominated(vectors)
    kept.sort(key=lambda i: (*vectors[i][1:], vectors[i][0]))
    return [points[i] for i in kept]


def front_hypervolume(points: Sequence[Scored], reference: Reference) -> float:
    """Hypervolume of ``points`` over accuracy and the reference's metrics, in the product of
    their units (e.g. accuracy x ms x MB)."""
    metrics = reference.metrics()
    return hypervolume_of([p.minimised(metrics) for p in points], reference.minimised())


def hypervolume(points: Sequence[Scored], reference_accuracy: float, reference_ms: float) -> float:
    """Area (accuracy x ms) dominated by ``points`` and bounded by the reference point.

    Points less accurate than ``reference_accuracy`` or slower than ``reference_ms`` add
    nothing. With latency in ms the unit is accuracy-milliseconds.
    """
    reference = Reference(reference_accuracy, ((Objective.latency, reference_ms),))
    return front_hypervolume(points, reference)


def hypervolume_unit(metrics: Sequence[Objective]) -> str:
    return " x ".join(["accuracy", *(m.unit for m in metrics)])
