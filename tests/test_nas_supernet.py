"""The superkernel: hand-set thresholds decode to every candidate, and each path computes
exactly the candidate's own MBConv (the small kernel inside the large, the low-expansion
channels first, SE as a part, skip as the identity)."""

from __future__ import annotations

import pytest
import torch

from models import Op, SearchSpace, get_space
from models.torch_blocks import MBConv
from nas.superkernel import EXPAND, KERNEL, ON, SE, NotASuperkernelSpace, space_grids
from nas.supernet import SuperMBConv, Supernet

TINY = get_space("tiny-64")
# A small space with searchable SE, so the SE part is decoded and checked in seconds.
SE_CANDIDATES = ["k3e3", "k3e6", "k5e3", "k5e6", "k3e3se", "k3e6se", "k5e3se", "k5e6se"]
TINY_SE = SearchSpace.from_dict(
    {
        "name": "tiny-se",
        "input": {"channels": 3, "resolutions": [32]},
        "stem": [{"op": "conv", "out": 8, "kernel": 3, "stride": 2}],
        "stages": [
            {"widths": [8], "depths": [2], "stride": 1, "candidates": SE_CANDIDATES, "skip": True},
            {"widths": [16], "depths": [1], "stride": 2, "candidates": SE_CANDIDATES},
        ],
        "head": [{"op": "conv", "out": 32, "kernel": 1}, {"op": "logits", "classes": 10}],
    }
)
ON_T, OFF_T = -1.0, 10.0  # the hand-set weights below have mean squares of 1 or less


def set_weights_to_one(layer: SuperMBConv) -> None:
    with torch.no_grad():
        layer.depthwise.weight.fill_(1.0)
        if layer.se_reduce is not None and layer.se_expand is not None:
            layer.se_reduce.weight.fill_(1.0)
            layer.se_expand.weight.fill_(1.0)


def thresholds_for(indicators: tuple[float, float, float, float]) -> torch.Tensor:
    return torch.tensor([ON_T if value >= 0.5 else OFF_T for value in indicators])


@pytest.mark.parametrize(
    "space", [TINY, TINY_SE, get_space("spnas-mobilenetv2-224")], ids=lambda s: s.name
)
def test_hand_set_thresholds_decode_to_every_candidate(space: SearchSpace) -> None:
    net = Supernet(space, classes=10)
    layers = net.searchable()
    for layer in layers:
        set_weights_to_one(layer)
    seen: set[tuple[int, str]] = set()
    for position in range(space.num_layers):
        for candidate, choice in enumerate(space.layers[position].candidates):
            arch = [0] * space.num_layers
            arch[position] = candidate
            for layer, g, index in zip(layers, net.grids, arch, strict=True):
                with torch.no_grad():
                    layer.thresholds.copy_(thresholds_for(g.indicators(index)))
            assert net.decode() == tuple(arch), f"layer {position}: {choice.label}"
            seen.add((position, choice.label))
    labels = {label for _, label in seen}
    assert "skip" in labels
    assert labels == {c.label for slot in space.layers for c in slot.candidates}


def test_thresholds_cut_at_the_mean_square() -> None:
    """d = 1[mean(w_part^2) >= t]: a threshold just above or below the part flips it."""
    net = Supernet(TINY, classes=10)
    layer = net.searchable()[1]
    with torch.no_grad():
        layer.depthwise.weight.fill_(0.5)  # every part's mean square is 0.25
        layer.thresholds.copy_(torch.tensor([0.24, 0.24, 0.26, 0.0]))
    kernel, on, expand, _ = layer.hard_indicators()
    assert (kernel, on, expand) == (1.0, 1.0, 0.0)
    assert net.grids[1].candidate(layer.hard_indicators()) == TINY.layers[1].candidates.index(
        TINY.layers[1].candidates[2]
    )  # k5e3
    with torch.no_grad():
        layer.thresholds[ON] = 0.26
    assert net.grids[1].candidate(layer.hard_indicators()) == net.grids[1].skip_index


def sliced_mbconv(layer: SuperMBConv, space: SearchSpace, position: int, index: int) -> MBConv:
    """The candidate's own MBConv with the superkernel's weights cut to its shape."""
    key = space.layers[position].key(index)
    block = MBConv(key).eval()
    mid, k = key.mid, key.kernel
    pad = (layer.grid.kernel - k) // 2
    state = layer.state_dict()
    own = block.state_dict()
    for name in own:
        if name.endswith("num_batches_tracked"):
            continue
        source = (
            name.replace("depthwise.conv.weight", "depthwise.weight")
            .replace("depthwise.bn.", "depthwise_bn.")
            .replace("se.reduce.", "se_reduce.")
            .replace("se.expand.", "se_expand.")
        )
        value = state[source]
        if source == "depthwise.weight":
            value = value[:mid, :, pad : pad + k, pad : pad + k]
        elif source.startswith(("expand.", "depthwise_bn.", "se_expand.")):
            value = value[:mid]
        elif source in ("se_reduce.weight", "project.conv.weight"):
            value = value[:, :mid]
        own[name] = value.clone()
    block.load_state_dict(own)
    return block.eval()


@pytest.mark.parametrize("space", [TINY, TINY_SE], ids=lambda s: s.name)
def test_every_path_computes_its_own_candidate(space: SearchSpace) -> None:
    torch.manual_seed(0)
    net = Supernet(space, classes=10)
    for layer in net.searchable():
        with torch.no_grad():  # non-trivial BN statistics, so a wrong slice would show
            for module in layer.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.2, 0.2)  # type: ignore[union-attr]
                    module.running_var.uniform_(0.5, 1.5)  # type: ignore[union-attr]
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
    net.eval()
    for position, (layer, grid) in enumerate(zip(net.searchable(), net.grids, strict=True)):
        assert isinstance(layer, SuperMBConv)
        slot = space.layers[position]
        x = torch.randn(2, slot.cin, slot.hw, slot.hw)
        for index, choice in enumerate(slot.candidates):
            d = torch.tensor(grid.indicators(index))
            with torch.no_grad():
                got = layer(x, d)
                want = (
                    x if choice.op is Op.SKIP else sliced_mbconv(layer, space, position, index)(x)
                )
            assert torch.allclose(got, want, atol=1e-5), f"layer {position}: {choice.label}"


def test_a_space_that_cannot_share_a_superkernel_is_refused() -> None:
    odd = SearchSpace.from_dict(
        {
            "name": "odd",
            "input": {"channels": 3, "resolutions": [16]},
            "stem": [{"op": "conv", "out": 8, "kernel": 3, "stride": 2}],
            # not every (kernel, expansion) combination
            "stages": [{"widths": [8], "depths": [2], "stride": 1, "candidates": ["k3e3", "k5e6"]}],
            "head": [{"op": "logits", "classes": 10}],
        }
    )
    with pytest.raises(NotASuperkernelSpace, match="not every combination"):
        space_grids(odd)


def test_indicator_columns_are_what_the_paper_calls_them() -> None:
    grid = space_grids(TINY)[1]
    k5e6 = TINY.layers[1].candidates.index(TINY.layers[1].candidates[3])
    assert grid.indicators(k5e6)[KERNEL] == 1.0
    assert grid.indicators(k5e6)[EXPAND] == 1.0
    assert grid.indicators(grid.skip_index)[ON] == 0.0  # type: ignore[arg-type]
    assert grid.indicators(0)[SE] == 0.0


def mbv3_head_space(se: str) -> SearchSpace:
    """A small fixed-shape space with OFA MobileNetV3's head: expand, pool, 1x1 conv, logits."""
    return SearchSpace.from_dict(
        {
            "name": f"tiny-mbv3-{se}",
            "input": {"channels": 3, "resolutions": [32]},
            "stem": [{"op": "conv", "out": 8, "kernel": 3, "stride": 2, "act": "hswish"}],
            "stages": [
                {
                    "widths": [16],
                    "depths": [1],
                    "stride": 2,
                    "act": "hswish",
                    "se": se,
                    "candidates": SE_CANDIDATES,
                }
            ],
            "head": [
                {"op": "conv", "out": 48, "kernel": 1, "act": "hswish"},
                {"op": "pool"},
                {"op": "conv", "out": 64, "kernel": 1, "act": "hswish"},
                {"op": "logits", "classes": 10},
            ],
        }
    )


def test_a_head_that_pools_before_its_last_conv_builds() -> None:
    space = mbv3_head_space("input")
    assert [k.op for k in space.suffix] == [Op.CONV, Op.POOL, Op.CONV, Op.LOGITS]
    net = Supernet(space, classes=10).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32), net.fixed_indicators([5]))
    assert tuple(out.shape) == (2, 10)


def test_ofa_se_on_the_expanded_channels_is_refused_not_built_wrong() -> None:
    with pytest.raises(ValueError, match=r"OFA's \('sem'.*shares one SE"):
        Supernet(mbv3_head_space("mid"), classes=10)
