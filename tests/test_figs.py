"""FiGS: channel gates, the search to a target under a device's cost, decoding and landing."""

from __future__ import annotations

import pytest
import torch

from models import SearchSpace, get_space
from models.space_spec import spec_from_dict
from nas.channel_cost import ChannelCostModule
from nas.figs import FigsConfig, cost_range, land, run_figs
from nas.gates import GatedSupernet, LogisticSigmoidGate
from predictor.artifact import LayerEntry
from predictor.channel_cost import ChannelCost, NotAChannelSpace
from predictor.channel_export import channel_cost
from predictor.compiled import compile_space
from predictor.fitting import fit_predictor
from tests.fixtures.factories import channel_spec
from tests.test_layer_model import WEIGHTS, device_truth

TINY = SearchSpace(spec_from_dict(channel_spec()))


@pytest.fixture(scope="module")
def cost() -> ChannelCost:
    keys = list(dict.fromkeys(k for p in TINY.positions for k in p.keys))
    truth = device_truth(keys, WEIGHTS, wiggle=0.1, seed=3)
    artifact = fit_predictor({k: LayerEntry(v) for k, v in truth.items()}, {})
    return channel_cost(artifact, compile_space(artifact, TINY, version=1))


def total_channels(module: ChannelCostModule, architecture: tuple[int, ...]) -> float:
    return sum(module.channels_of(architecture))


def test_a_lower_target_lands_on_fewer_channels_and_each_lands_within_its_band(
    cost: ChannelCost,
) -> None:
    module = ChannelCostModule(cost)
    low, high = cost_range(module)
    results = []
    for fraction in (0.25, 0.8):
        target = low + fraction * (high - low)
        config = FigsConfig(
            target=target, epochs=3, warmup_epochs=1, resolution=12, tolerance=0.05, threads=1
        )
        result = run_figs(TINY, cost, config)
        assert result.within_tolerance, (fraction, result.cost, target)
        assert abs(result.cost - target) <= 0.05 * target
        assert result.cost == pytest.approx(module.of(result.architecture))
        assert 0 <= result.val_accuracy <= 1
        assert len(result.epochs) == 3
        results.append(result)
    narrow, wide = results
    assert total_channels(module, narrow.architecture) < total_channels(module, wide.architecture)
    # The search itself moved toward its target: the gates of the low target held less.
    assert narrow.cost < wide.cost
    held_narrow = ChannelCostModule(cost)(torch.tensor(narrow.held_values))
    held_wide = ChannelCostModule(cost)(torch.tensor(wide.held_values))
    assert float(held_narrow) < float(held_wide)


def test_landing_moves_into_the_band_and_prefers_what_the_gates_held(cost: ChannelCost) -> None:
    module = ChannelCostModule(cost)
    widest = tuple(1 for _ in TINY.decisions)
    held = module.values_of(widest).tolist()
    # The gates held the widest everywhere but wanted stage 1 narrower: a move there is cheap.
    stage1 = [d.name for d in TINY.decisions].index("stage1.width")
    held[stage1] = 17.0
    target = module.of([0 if d == stage1 else 1 for d in range(len(widest))])
    architecture, moves, inside = land(module, widest, held, target, 0.01)
    assert inside
    assert abs(module.of(architecture) - target) <= 0.01 * target
    assert moves[0].decision == stage1
    # Unreachable bands return the closest architecture seen, and say so.
    _, _, reached = land(module, widest, held, 0.5 * cost_range(module)[0], 0.01)
    assert reached is False


def test_a_target_outside_the_space_is_refused_with_its_range(cost: ChannelCost) -> None:
    low, high = cost_range(ChannelCostModule(cost))
    with pytest.raises(ValueError, match="outside what figs-tiny-32 can reach"):
        run_figs(TINY, cost, FigsConfig(target=2 * high))
    assert low < high


def test_gates_keep_one_channel_and_decode_to_the_highest_logits() -> None:
    gate = LogisticSigmoidGate(6)
    with torch.no_grad():
        gate.logits.copy_(torch.tensor([-3.0, -1.0, -2.0, -0.5, -4.0, -6.0]))
    assert gate.hard().tolist() == [0, 0, 0, 1, 0, 0]  # all off: the highest stays on
    assert gate.top(2).tolist() == [0, 1, 0, 1, 0, 0]
    assert float(gate.probability().detach().sum()) < 1.5
    noisy = gate.sample(0.5, torch.Generator().manual_seed(0))
    assert bool(((noisy >= 0) & (noisy <= 1)).all())


def test_a_gated_supernet_masks_to_the_channels_of_an_architecture(cost: ChannelCost) -> None:
    module = ChannelCostModule(cost)
    model = GatedSupernet(TINY, classes=10)
    architecture = tuple(0 for _ in TINY.decisions)
    counts = module.channels_of(architecture)
    masks = model.masks_of(counts)
    assert [int(m.sum()) for m in masks] == [round(v) for v in counts]
    model.eval()
    out = model(torch.zeros(2, 3, 12, 12), masks)
    assert out.shape == (2, 10)


def test_a_space_whose_decisions_are_not_channels_is_refused_by_name() -> None:
    with pytest.raises(NotAChannelSpace, match="expansion only"):
        GatedSupernet(get_space("spnas-mobilenetv2-224"), classes=10)
