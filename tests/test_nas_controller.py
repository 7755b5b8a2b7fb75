"""The lambda controller lands a threshold search on a target; landing closes the last gap."""

from __future__ import annotations

import math

import pytest
import torch

from models import get_space
from nas.controller import LambdaController
from nas.landing import land
from nas.runtime_term import RuntimeFormula, RuntimeTerm
from nas.superkernel import space_grids
from nas.supernet import straight_through
from tests.nas_tables import table_for

SEED_SPACE = get_space("spnas-mobilenetv2-224")


def test_lambda_rises_above_the_target_and_falls_below_it() -> None:
    controller = LambdaController(target_ms=10.0, step=0.1, proportional=0.0)
    assert controller.update(20.0) == pytest.approx(0.1 * math.log(2))
    assert controller.update(20.0) == pytest.approx(0.2 * math.log(2))
    controller.update(5.0)
    assert controller.value == pytest.approx(0.1 * math.log(2))
    damped = LambdaController(target_ms=10.0, step=0.1, proportional=1.0)
    assert damped.update(20.0) == pytest.approx(1.1 * math.log(2))  # integral + proportional
    assert damped.update(10.0) == pytest.approx(0.1 * math.log(2))  # on target: integral only
    for _ in range(10):
        controller.update(1.0)
    assert controller.value == 0.0  # never negative: below the target there is no pressure
    with pytest.raises(ValueError, match="positive"):
        LambdaController(target_ms=0.0)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_the_controller_lands_a_threshold_search_on_the_target(fraction: float) -> None:
    """Thresholds over fixed part norms, an accuracy stand-in that wants every part, and
    ``lambda * log R`` from the controller: the held architecture ends at the target."""
    table = table_for(SEED_SPACE)
    grids = space_grids(SEED_SPACE)
    term = RuntimeTerm(table, grids, RuntimeFormula.EXACT)
    low, high = table.range_ms()
    target = low + fraction * (high - low)
    generator = torch.Generator().manual_seed(1)
    norms = 0.05 + 0.1 * torch.rand(len(grids), 4, generator=generator)  # mean squares
    value = torch.rand(len(grids), 4, generator=generator)  # how much accuracy each part buys
    searched = torch.tensor([g.searches for g in grids])
    thresholds = torch.zeros(len(grids), 4, requires_grad=True)
    optimiser = torch.optim.Adam([thresholds], lr=3e-3)
    steps = 600
    annealing = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    controller = LambdaController(target, step=0.005, proportional=0.5)
    held: list[float] = []
    for _ in range(steps):
        d = torch.where(searched, straight_through(norms - thresholds), torch.ones(()))
        runtime = term(d)
        loss = -(value * d).sum() * 0.01 + controller.value * torch.log(runtime)
        optimiser.zero_grad()
        torch.autograd.backward(loss)
        optimiser.step()
        annealing.step()
        controller.update(float(runtime.detach()))
        held.append(float(runtime.detach()))
    last = held[-100:]
    # It swings around the target by a layer or so, less as the learning rate decays.
    assert sum(last) / len(last) == pytest.approx(target, rel=0.03)
    assert max(abs(r - target) / target for r in last) < 0.1
    assert controller.value > 0  # the constraint is active: the stand-in wants everything


def test_landing_moves_into_the_band_by_the_least_sure_decisions() -> None:
    table = table_for(SEED_SPACE)
    grids = space_grids(SEED_SPACE)
    big = tuple(3 for _ in grids)  # k5e6 everywhere: the slowest
    hard = [grid.indicators(3) for grid in grids]
    confidence = [[1.0, 1.0, 1.0, 1.0] for _ in grids]
    confidence[7] = [0.001, 0.001, 0.001, 0.001]  # layer 7's decisions were barely made
    target = table.latency_ms(big) * 0.97
    landed = land(table, grids, big, hard, confidence, target, tolerance=0.02)
    assert landed.within_tolerance
    assert abs(landed.latency_ms - target) <= 0.02 * target
    assert landed.latency_ms == pytest.approx(table.latency_ms(landed.architecture))
    assert landed.flips[0].position == 7
    already = land(table, grids, big, hard, confidence, table.latency_ms(big), tolerance=0.02)
    assert already.architecture == big
    assert already.flips == ()
