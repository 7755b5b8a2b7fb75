"""Landing: move a decoded architecture onto the latency target, least-sure decisions first.

A few epochs of search leave the thresholds close to the target but not on it: the decoded
architecture's latency swings by whole layers. Landing flips indicators to close the gap,
choosing each time the single-layer change that costs the least confidence per millisecond
it moves; confidence is an indicator's margin relative to its part's mean square,
``|x| / mean(w_part ** 2)`` (a decision the weights barely made is cheap to undo). It stops
inside ``target * (1 +- tolerance)``; the report gives the decoded and the landed
architecture side by side, so the change is never hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from latency_api.schemas.predictors import RuntimeTable
from models.errors import UserInputError
from nas.superkernel import EXPAND, KERNEL, ON, SE, LayerGrid

MAX_FLIPS_PER_LAYER = 4


@dataclass(frozen=True)
class Flip:
    position: int
    before: int
    after: int
    delta_ms: float
    cost: float


@dataclass(frozen=True)
class Landing:
    architecture: tuple[int, ...]
    latency_ms: float
    flips: tuple[Flip, ...]
    within_tolerance: bool


def land(
    table: RuntimeTable,
    grids: Sequence[LayerGrid],
    architecture: Sequence[int],
    hard: Sequence[Sequence[float]],
    confidence: Sequence[Sequence[float]],
    target_ms: float,
    tolerance: float,
) -> Landing:
    """Flip layers of ``architecture`` until its latency is within ``tolerance`` of the target.

    ``hard`` and ``confidence`` are per layer and indicator column (the decoded indicator
    values and their relative margins). Returns the closest architecture seen if the band
    cannot be reached by single-layer moves (then ``within_tolerance`` is False).
    """
    if tolerance < 0:
        raise UserInputError(f"landing tolerance {tolerance} must be >= 0")
    arch = list(architecture)
    values = [list(row) for row in hard]
    low, high = target_ms * (1 - tolerance), target_ms * (1 + tolerance)
    flips: list[Flip] = []
    best = (abs(table.latency_ms(arch) - target_ms), tuple(arch))
    for _ in range(MAX_FLIPS_PER_LAYER * len(arch)):
        latency = table.latency_ms(arch)
        if low <= latency <= high:
            break
        need = target_ms - latency
        move = _best_move(
            table, grids, arch, values, confidence, need, low - latency, high - latency
        )
        if move is None:
            break
        flips.append(move)
        arch[move.position] = move.after
        values[move.position] = _required(grids[move.position], move.after, values[move.position])
        distance = abs(table.latency_ms(arch) - target_ms)
        if distance < best[0]:
            best = (distance, tuple(arch))
    final = tuple(arch)
    latency = table.latency_ms(final)
    inside = low <= latency <= high
    if not inside:
        final = best[1]
        latency = table.latency_ms(final)
        inside = low <= latency <= high
    return Landing(final, latency, tuple(flips), inside)


def _best_move(
    table: RuntimeTable,
    grids: Sequence[LayerGrid],
    arch: list[int],
    values: list[list[float]],
    confidence: Sequence[Sequence[float]],
    need_ms: float,
    band_low_ms: float,
    band_high_ms: float,
) -> Flip | None:
    """The cheapest single-layer change toward the band; one that lands in it wins."""
    landing: list[Flip] = []
    toward: list[Flip] = []
    for position, grid in enumerate(grids):
        current = arch[position]
        for candidate in range(len(table.layers[position].candidates)):
            if candidate == current:
                continue
            delta = table.calibration.a * (
                table.ms(position, candidate) - table.ms(position, current)
            )
            if delta == 0 or (delta > 0) != (need_ms > 0):
                continue
            required = _required(grid, candidate, values[position])
            cost = sum(
                confidence[position][c]
                for c in (KERNEL, ON, EXPAND, SE)
                if required[c] != values[position][c]
            )
            flip = Flip(position, current, candidate, delta, cost)
            (landing if band_low_ms <= delta <= band_high_ms else toward).append(flip)
    if landing:
        return min(landing, key=lambda f: (f.cost, abs(f.delta_ms - need_ms)))
    # Never step past the band by more than the gap itself: that would only swing around it.
    toward = [f for f in toward if abs(f.delta_ms) < 2 * abs(need_ms)]
    if not toward:
        return None
    return min(toward, key=lambda f: f.cost / abs(f.delta_ms))


def _required(grid: LayerGrid, candidate: int, current: Sequence[float]) -> list[float]:
    """Indicator values selecting ``candidate``; a skip leaves the block's others as they are."""
    wanted = list(grid.indicators(candidate))
    if candidate == grid.skip_index:
        return [current[KERNEL], 0.0, current[EXPAND], current[SE]]
    return wanted
