"""The Single-Path supernet: one superkernel MBConv per searchable layer of a space.

Each :class:`SuperMBConv` holds the weights of its layer's largest candidate and trainable
thresholds ``t`` (one per indicator column of :mod:`nas.superkernel`). An indicator is
``d = 1[x >= 0]`` with ``x = mean(w_part ** 2) - t``: the squared norm of the part's weights
per weight, so that one threshold scale fits parts of every size. Its gradient is the
straight-through one, ``d = sg(1[x >= 0] - sigmoid(x)) + sigmoid(x)``.

The parts, as in the paper: the outer ring of the large depthwise kernel (kernel), the
low-expansion channels (on: a skippable layer whose low channels are dropped is skipped), the
channels beyond them (expand), and the squeeze-and-excitation weights (se). Channels are
masked after the depthwise conv, its BN and activation, so a dropped channel reaches neither
the SE pooling nor the projection: the block computes exactly the narrower candidate. Skip
scales the block's residual branch by ``d_on``, so a skipped layer is exactly the identity.

The same module runs a fixed architecture (hard indicators from candidate indices): the
one-shot accuracy estimate of the Pareto search samples paths this way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models import LayerKey, LayerSlot, Op, SearchSpace
from models.torch_blocks import ConvBNAct, GlobalPool, Head, Logits, MBConv, activation
from nas.superkernel import EXPAND, KERNEL, N_INDICATORS, ON, SE, LayerGrid, space_grids


def straight_through(x: torch.Tensor) -> torch.Tensor:
    """``1[x >= 0]`` in the forward pass, the sigmoid's gradient in the backward pass."""
    soft = torch.sigmoid(x)
    hard = (x >= 0).to(x.dtype)
    return (hard - soft).detach() + soft


class SuperMBConv(nn.Module):
    """All candidates of one searchable layer in one MBConv of the largest shape."""

    ring_mask: torch.Tensor
    searched: torch.Tensor
    fixed: torch.Tensor

    def __init__(self, slot: LayerSlot, grid: LayerGrid) -> None:
        super().__init__()
        self.grid = grid
        self.residual = slot.stride == 1 and slot.cin == slot.cout
        self.mid = slot.cin * grid.expansion
        self.mid_low = slot.cin * grid.expansions[0]
        self.expand = ConvBNAct(slot.cin, self.mid, 1, act=slot.act) if grid.expansion > 1 else None
        k = grid.kernel
        self.depthwise = nn.Conv2d(
            self.mid, self.mid, k, slot.stride, k // 2, groups=self.mid, bias=False
        )
        self.depthwise_bn = nn.BatchNorm2d(self.mid, eps=1e-3)
        self.act = activation(slot.act)
        if slot.se_mid and True in grid.se_options:
            # OFA's SE is a quarter of each candidate's own expanded width: one SE per
            # expansion, which the superkernel's single shared SE does not model.
            raise ValueError(
                f"layer {slot.hw}x{slot.hw} {slot.cin}->{slot.cout}: its SE candidates are "
                "OFA's ('sem', a quarter of the expanded channels); the Single-Path supernet "
                "shares one SE a quarter of the input wide across candidates ('se') only"
            )
        se_width = LayerKey(Op.MBCONV, slot.hw, slot.cin, slot.cout, se=True).se_channels
        self.se_reduce = nn.Conv2d(self.mid, se_width, 1) if True in grid.se_options else None
        self.se_expand = nn.Conv2d(se_width, self.mid, 1) if True in grid.se_options else None
        self.project = ConvBNAct(self.mid, slot.cout, 1)
        self.thresholds = nn.Parameter(torch.zeros(N_INDICATORS))
        ring = torch.ones(1, 1, k, k)
        small = grid.kernels[0]
        pad = (k - small) // 2
        ring[..., pad : pad + small, pad : pad + small] = 0.0
        self.register_buffer("ring_mask", ring)
        self.register_buffer("searched", torch.tensor(grid.searches), persistent=False)
        fixed = torch.tensor([grid.fixed_value(c) for c in range(N_INDICATORS)])
        self.register_buffer("fixed", fixed, persistent=False)

    # -- indicators ---------------------------------------------------------------------------

    def margins(self) -> torch.Tensor:
        """``x = mean(w_part ** 2) - t`` per indicator column; the sign is the decision."""
        ring_mask: torch.Tensor = self.ring_mask
        weight = self.depthwise.weight
        core, ring = weight * (1 - ring_mask), weight * ring_mask
        x_kernel = _mean_square(ring, ring_mask.expand_as(weight)) - self.thresholds[KERNEL]
        d_kernel = straight_through(x_kernel) if self.grid.searches[KERNEL] else None
        effective = core + ring * d_kernel if d_kernel is not None else weight
        low, high = effective[: self.mid_low], effective[self.mid_low :]
        x_on = low.pow(2).mean() - self.thresholds[ON]
        x_expand = (
            high.pow(2).mean() - self.thresholds[EXPAND]
            if high.numel()
            else -self.thresholds[EXPAND]
        )
        if self.se_reduce is not None and self.se_expand is not None:
            se_weights = torch.cat(
                (self.se_reduce.weight.flatten(), self.se_expand.weight.flatten())
            )
            x_se = se_weights.pow(2).mean() - self.thresholds[SE]
        else:
            x_se = -self.thresholds[SE]
        return torch.stack((x_kernel, x_on, x_expand, x_se))

    def indicators(self) -> torch.Tensor:
        """Straight-through indicators (4,); columns the layer does not search are constants."""
        d = straight_through(self.margins())
        fixed = self.fixed.to(d.dtype)
        return torch.where(self.searched, d, fixed)

    def hard_indicators(self) -> tuple[float, float, float, float]:
        with torch.no_grad():
            d = self.indicators()
        return (float(d[0]), float(d[1]), float(d[2]), float(d[3]))

    def confidence(self) -> tuple[float, float, float, float]:
        """Each decision's margin relative to its part's mean square: ``|x| / mean(w^2)``."""
        with torch.no_grad():
            x = self.margins()
            mean_square = (x + self.thresholds).abs().clamp(min=1e-12)
            relative = x.abs() / mean_square
        return (float(relative[0]), float(relative[1]), float(relative[2]), float(relative[3]))

    # -- forward ------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The block under indicators ``d`` (4,): straight-through ones, or a fixed corner."""
        ring_mask: torch.Tensor = self.ring_mask
        weight = self.depthwise.weight
        kernel = weight * (1 - ring_mask) + weight * ring_mask * d[KERNEL]
        h = self.expand(x) if self.expand is not None else x
        kernel, padding = _crop_to_input(kernel, min(h.shape[-2:]))
        h = F.conv2d(h, kernel, stride=self.depthwise.stride, padding=padding, groups=self.mid)
        h = self.act(self.depthwise_bn(h))
        if self.mid > self.mid_low:
            mask = torch.cat(
                (
                    torch.ones(self.mid_low, dtype=h.dtype),
                    d[EXPAND].expand(self.mid - self.mid_low),
                )
            )
            h = h * mask.view(1, -1, 1, 1)
        if self.se_reduce is not None and self.se_expand is not None:
            pooled = h.mean(dim=(2, 3), keepdim=True)
            gate = torch.sigmoid(self.se_expand(torch.relu(self.se_reduce(pooled))))
            h = h * (1 + d[SE] * (gate - 1))
        out: torch.Tensor = self.project(h)
        if self.residual:
            return x + d[ON] * out
        return out


class Supernet(nn.Module):
    """Fixed prefix, one :class:`SuperMBConv` per searchable layer, fixed suffix.

    The classifier (of the head, or of the logits layer) is resized to ``classes`` (the proxy
    task's), everything else has
    the space's shapes; the input resolution is free (convolutions pad, the head pools).
    """

    def __init__(self, space: SearchSpace, classes: int) -> None:
        super().__init__()
        self.space = space
        self.grids = space_grids(space)
        self.prefix = nn.Sequential(*(fixed_module(k, classes) for k in space.prefix))
        self.layers = nn.ModuleList(
            SuperMBConv(slot, grid) for slot, grid in zip(space.layers, self.grids, strict=True)
        )
        self.suffix = nn.Sequential(*(fixed_module(k, classes) for k in space.suffix))

    def threshold_parameters(self) -> list[nn.Parameter]:
        return [layer.thresholds for layer in self.searchable()]

    def weight_parameters(self) -> list[nn.Parameter]:
        thresholds = {id(p) for p in self.threshold_parameters()}
        return [p for p in self.parameters() if id(p) not in thresholds]

    def indicators(self) -> torch.Tensor:
        """Straight-through indicators of every layer, (L, 4)."""
        return torch.stack([layer.indicators() for layer in self.searchable()])

    def fixed_indicators(self, architecture: Sequence[int]) -> torch.Tensor:
        """The hard indicators (L, 4) that select ``architecture``."""
        arch = self.space.validate(architecture)
        return torch.tensor([grid.indicators(i) for grid, i in zip(self.grids, arch, strict=True)])

    def path(self, architecture: Sequence[int]) -> torch.Tensor:
        """What :meth:`forward` takes to run ``architecture``: its hard indicators."""
        return self.fixed_indicators(architecture)

    def hard_indicators(self) -> list[tuple[float, float, float, float]]:
        return [layer.hard_indicators() for layer in self.searchable()]

    def confidence(self) -> list[tuple[float, float, float, float]]:
        return [layer.confidence() for layer in self.searchable()]

    def decode(self) -> tuple[int, ...]:
        """The architecture the thresholds currently select: one candidate index per layer."""
        return tuple(
            grid.candidate(layer.hard_indicators())
            for grid, layer in zip(self.grids, self.searchable(), strict=True)
        )

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Logits under indicators ``d`` (L, 4)."""
        h = self.prefix(x)
        for layer, row in zip(self.searchable(), d, strict=True):
            h = layer(h, row)
        out: torch.Tensor = self.suffix(h)
        return out

    def searchable(self) -> list[SuperMBConv]:
        return [layer for layer in self.layers if isinstance(layer, SuperMBConv)]


def _crop_to_input(kernel: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
    """The kernel's taps that can reach an input of ``size`` pixels, and their padding.

    At the proxy task's small resolutions the late layers see 1x1 or 2x2 inputs, where a 5x5
    depthwise conv multiplies mostly padding, and torch's depthwise path is slow on such
    shapes. Taps more than ``size - 1`` pixels from the centre only ever meet zero padding,
    so dropping them changes neither the output's size nor its values.
    """
    k = kernel.shape[-1]
    reach = 2 * (size - 1) + 1
    if reach >= k:
        return kernel, k // 2
    cut = (k - reach) // 2
    return kernel[..., cut : cut + reach, cut : cut + reach], reach // 2


def _mean_square(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum().clamp(min=1)
    return values.pow(2).sum() / count


def fixed_module(key: LayerKey, classes: int) -> nn.Module:
    """A fixed (not searched) layer of a supernet; classifiers resized to ``classes``."""
    if key.op is Op.CONV:
        return ConvBNAct(key.cin, key.cout, key.kernel, key.stride, act=key.act)
    if key.op is Op.HEAD:
        return Head(dataclasses.replace(key, classes=classes))
    if key.op is Op.LOGITS:
        return Logits(dataclasses.replace(key, classes=classes, cout=classes))
    if key.op is Op.MBCONV:
        return MBConv(key)
    if key.op is Op.POOL:
        return GlobalPool()
    raise ValueError(f"fixed layer {key} cannot be built into a supernet")
