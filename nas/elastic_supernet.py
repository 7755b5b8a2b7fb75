"""A weight-sharing supernet for elastic spaces (resolution, widths, depths, kernels, expansions).

Once-for-All's way of sharing weights (Cai et al. 2020; mit-han-lab/once-for-all at f03b2673,
``ofa/imagenet_classification/elastic_nn/modules/dynamic_layers.py``): every layer slot holds
the weights of its largest shape, and a smaller choice uses a part of them:

- a smaller kernel, the centre of the largest one (OFA also learns a small transformation of
  that centre; this supernet does not);
- fewer expanded channels, the first ones (masked to zero after the depthwise conv, its BN and
  activation, so they reach neither SE nor the projection: the block computes exactly the
  narrower one);
- a narrower stage, its first output channels (the rest masked to zero, which the next layer's
  1x1 convolutions then ignore, as a slice of their weights would);
- a shallower stage, its first layers (the others are skipped); a ``skip`` candidate is the
  identity;
- a lower resolution, the input resized to the same fraction of the proxy task's resolution.

Squeeze-and-excitation keeps the width of the largest shape (OFA shrinks it with the expanded
channels). Masked channels are zero, so that only changes how many hidden units the gate has.

The scores rank architectures on the proxy task (digits), as the fixed-shape supernet's do.
A *path* here is the architecture itself: :meth:`ElasticSupernet.path` checks and returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from models import LayerKey, Op, SearchSpace
from models.layer_key import Activation
from models.search_space import Candidate
from models.torch_blocks import ConvBNAct, activation
from nas.supernet import fixed_module


class ElasticMBConv(nn.Module):
    """One layer slot at its largest shape; forward takes the active shape."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        expansion: int,
        stride: int,
        se: bool,
        act: Activation,
    ) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel, self.stride = cin, cout, kernel, stride
        mid = cin * expansion
        self.mid = mid
        self.expand = ConvBNAct(cin, mid, 1, act=act)
        self.depthwise = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(mid, eps=1e-3)
        self.act = activation(act)
        squeezed = max(1, mid // 4)
        self.se_reduce = nn.Conv2d(mid, squeezed, 1) if se else None
        self.se_expand = nn.Conv2d(squeezed, mid, 1) if se else None
        self.project = ConvBNAct(mid, cout, 1)

    def forward(
        self, x: torch.Tensor, cin: int, cout: int, candidate: Candidate, residual: bool
    ) -> torch.Tensor:
        k = candidate.kernel
        cut = (self.kernel - k) // 2
        weight = self.depthwise.weight[..., cut : cut + k, cut : cut + k]
        mid = cin * candidate.expansion
        h = self.expand(x)
        h = F.conv2d(h, weight, stride=self.stride, padding=k // 2, groups=self.mid)
        h = self.act(self.depthwise_bn(h))
        if mid < self.mid:
            h = h * _mask(self.mid, mid, h)
        if candidate.se and self.se_reduce is not None and self.se_expand is not None:
            pooled = h.mean(dim=(2, 3), keepdim=True)
            h = h * torch.sigmoid(self.se_expand(torch.relu(self.se_reduce(pooled))))
        out: torch.Tensor = self.project(h)
        if cout < self.cout:
            out = out * _mask(self.cout, cout, out)
        return x + out if residual else out


def _mask(total: int, active: int, like: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(total, dtype=like.dtype)
    mask[:active] = 1.0
    return mask.view(1, -1, 1, 1)


class ElasticSupernet(nn.Module):
    """Stem, every layer slot of every stage at its largest shape, head; see the module doc."""

    def __init__(self, space: SearchSpace, classes: int) -> None:
        super().__init__()
        self.space = space
        spec = space.spec
        positions = {p.name: p for p in space.positions}
        self.stem = nn.Sequential(
            *(fixed_module(positions[f"stem{n}"].keys[0], classes) for n in range(len(spec.stem)))
        )
        self.slots = nn.ModuleList()
        self._slot_index: dict[tuple[int, int], int] = {}  # (stage, slot) -> module
        cin = spec.stem[-1].out if spec.stem else spec.input.channels
        for s, stage in enumerate(spec.stages):
            candidates = [Candidate.parse(c) for c in stage.candidates]
            width = max(stage.widths)
            for slot in range(max(stage.depths)):
                self._slot_index[s, slot] = len(self.slots)
                self.slots.append(
                    ElasticMBConv(
                        cin if slot == 0 else width,
                        width,
                        max(c.kernel for c in candidates),
                        max(c.expansion for c in candidates),
                        stage.stride if slot == 0 else 1,
                        any(c.se for c in candidates),
                        Activation(stage.act),
                    )
                )
            cin = width
        # The head at the last stage's largest width: a narrower one arrives zero-padded, which
        # its first layer's convolution treats as a slice of its input weights.
        head = [positions[f"head{n}"] for n in range(len(spec.head))]
        self.head = nn.Sequential(*(fixed_module(_widest(p.keys), classes) for p in head))
        self._decision = {d.name: i for i, d in enumerate(space.decisions)}

    def path(self, architecture: Sequence[int]) -> tuple[int, ...]:
        """What :meth:`forward` takes to run ``architecture``: the checked architecture."""
        return self.space.validate(architecture)

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())  # no thresholds: nothing here is searched by gradient

    def _choice(self, arch: Sequence[int], name: str, values: Sequence[int]) -> int:
        index = self._decision.get(name)
        return values[0] if index is None else values[arch[index]]

    def forward(self, x: torch.Tensor, arch: Sequence[int]) -> torch.Tensor:
        spec = self.space.spec
        resolution = self._choice(arch, "resolution", spec.input.resolutions)
        if resolution != max(spec.input.resolutions):
            size = max(8, round(x.shape[-1] * resolution / max(spec.input.resolutions)))
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        h = self.stem(x)
        cin = h.shape[1]
        for s, stage in enumerate(spec.stages):
            width = self._choice(arch, f"stage{s}.width", stage.widths)
            depth = self._choice(arch, f"stage{s}.depth", stage.depths)
            labels = list(stage.candidates) + (["skip"] if stage.skip else [])
            for slot in range(max(stage.depths)):
                if slot >= depth:
                    continue
                index = self._decision.get(f"stage{s}.layer{slot}")
                candidate = Candidate.parse(labels[0 if index is None else arch[index]])
                if candidate.op is Op.SKIP:
                    continue
                module = cast(ElasticMBConv, self.slots[self._slot_index[s, slot]])
                # A stage's later layers keep its width and resolution: residual, as in OFA.
                h = module(h, cin if slot == 0 else width, width, candidate, slot > 0)
            cin = width
        out: torch.Tensor = self.head(h)
        return out


def _widest(keys: Sequence[LayerKey]) -> LayerKey:
    return max(keys, key=lambda k: (k.cin, k.hw))
