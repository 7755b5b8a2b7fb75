"""The differentiable runtime term: gradients, exactness at the corners, straight-through."""

from __future__ import annotations

import itertools

import pytest
import torch

from models import get_space
from nas.runtime_term import RuntimeFormula, RuntimeTerm
from nas.superkernel import space_grids
from nas.supernet import Supernet, straight_through
from tests.nas_tables import random_table, table_for

TINY = get_space("tiny-64")
SE_SPACE = get_space("spnas-se-mobilenetv2-224")


@pytest.mark.parametrize("formula", list(RuntimeFormula))
@pytest.mark.parametrize("space", [TINY, SE_SPACE], ids=lambda s: s.name)
def test_gradient_matches_finite_differences(formula: RuntimeFormula, space: object) -> None:
    table = random_table(space, seed=3, a=1.07, b=0.4)  # type: ignore[arg-type]
    term = RuntimeTerm(table, space_grids(space), formula)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(0)
    d = torch.rand(len(table.layers), 4, generator=generator, dtype=torch.float64)
    d.requires_grad_(True)
    # Central differences on every indicator against autograd, in float64.
    assert torch.autograd.gradcheck(term, (d,), eps=1e-6, atol=1e-7, rtol=1e-5)
    analytic = torch.autograd.grad(term(d), d)[0]
    eps = 1e-6
    for layer, column in [(0, 0), (1, 1), (len(table.layers) - 1, 2), (1, 3)]:
        up, down = d.detach().clone(), d.detach().clone()
        up[layer, column] += eps
        down[layer, column] -= eps
        numeric = (term(up) - term(down)) / (2 * eps)
        assert float(analytic[layer, column]) == pytest.approx(float(numeric), rel=1e-6, abs=1e-9)


def test_exact_term_equals_the_tables_sum_at_every_architecture() -> None:
    table = random_table(TINY, seed=5, a=1.1, b=0.25)
    term = RuntimeTerm(table, space_grids(TINY), RuntimeFormula.EXACT)
    net = Supernet(TINY, classes=10)
    for arch in itertools.product(*(range(n) for n in TINY.candidate_counts)):
        d = net.fixed_indicators(arch).double()
        assert float(term(d)) == pytest.approx(table.latency_ms(arch), rel=1e-12)


def test_seed_term_differs_from_the_table_only_at_k3e3() -> None:
    table = random_table(TINY, seed=6)
    term = RuntimeTerm(table, space_grids(TINY), RuntimeFormula.SEED)
    net = Supernet(TINY, classes=10)
    k3e3 = 0
    for layer in range(TINY.num_layers):
        for candidate in range(TINY.candidate_counts[layer]):
            arch = [1] * TINY.num_layers  # k3e6 everywhere else: exact in both forms
            arch[layer] = candidate
            got = float(term(net.fixed_indicators(arch).double()))
            label = TINY.layers[layer].candidates[candidate].label
            if candidate == k3e3:
                # The paper's form: T[k5e3] * T[k3e6] / T[k5e6] stands in for T[k3e3].
                approx = table.ms(layer, 2) * table.ms(layer, 1) / table.ms(layer, 3)
                assert got - table.latency_ms(arch) == pytest.approx(
                    approx - table.ms(layer, 0), abs=1e-9
                ), label
            else:
                assert got == pytest.approx(table.latency_ms(arch), rel=1e-12), label


def test_threshold_gradient_is_the_straight_through_chain() -> None:
    """dR/dt = -dR/dd * sigmoid'(x): the hard decision forward, the sigmoid's slope backward."""
    table = table_for(TINY)  # latency grows with MACs, so dropping a part is faster
    net = Supernet(TINY, classes=10).double()
    term = RuntimeTerm(table, net.grids, RuntimeFormula.EXACT)
    layer = net.searchable()[1]
    with torch.no_grad():
        layer.thresholds.copy_(torch.tensor([0.01, -0.02, 0.03, 0.0], dtype=torch.float64))
    d = net.indicators()
    runtime = term(d)
    grad_t = torch.autograd.grad(runtime, layer.thresholds)[0]
    # The same chain by hand: d(R)/d(d) at the hard point, times the sigmoid's slope.
    hard = d.detach().clone().requires_grad_(True)
    dr_dd = torch.autograd.grad(term(hard), hard)[0][1]
    x = layer.margins().detach()
    slope = torch.sigmoid(x) * (1 - torch.sigmoid(x))
    # ON and EXPAND depend on their own threshold only (tiny-64 has no SE); the kernel's
    # threshold also reaches them through the ring it adds to their weights, so it is left out.
    for column in (1, 2):
        assert float(grad_t[column]) == pytest.approx(
            float(-dr_dd[column] * slope[column]), rel=1e-9
        )
        assert float(grad_t[column]) < 0  # raising the threshold drops the part: faster
    assert float(grad_t[3]) == 0.0  # SE is not searched in tiny-64
    assert torch.allclose(straight_through(x), (x >= 0).double(), atol=1e-12)
