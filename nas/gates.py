"""FiGS's channel gates on a supernet of a channel space: every channel can be switched off.

FiGS (Mei et al. 2020) puts a Logistic-Sigmoid gate, a relaxed Bernoulli, on every channel;
MorphNet's ``LogisticSigmoidGating`` (google-research/morph-net at d9286a1,
``morph_net/probabilistic_gating/activation_gating.py``) is its reference code:

- each channel has a logit, ``log(p / (1 - p))``, initialised to 2.5 (p = 0.92);
- training samples ``mask = sigmoid((logit + L) / tau)`` with logistic noise ``L``;
- inference keeps the channels whose logit is positive, and MorphNet keeps one channel alive
  so a layer never goes dark (its TODO asks for the highest logit rather than the first
  channel; that is what this does);
- the regulariser reads the probabilities ``sigmoid(logit)``: their sum is the expected number
  of live channels, the count a cost function prices.

Gates sit where a channel space decides: a stage's output channels (one gate shared by the
stage's layers, which residual additions tie together) and each layer's expanded channels
(after the depthwise conv, its BN and activation, so a switched-off channel reaches the
projection as zero). Weights are shared as in :mod:`nas.elastic_supernet`: every layer holds
its largest shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from models import SearchSpace
from models.layer_key import Activation
from models.search_space import Candidate
from models.torch_blocks import ConvBNAct
from nas.supernet import fixed_module
from predictor.channel_cost import channel_decisions

LOG_ODDS_INIT = 2.5  # MorphNet's default: p = 0.92 of being on


class LogisticSigmoidGate(nn.Module):
    """Gates on ``n`` channels; see the module doc."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.full((n,), LOG_ODDS_INIT))

    def probability(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def sample(self, temperature: float, generator: torch.Generator) -> torch.Tensor:
        """A relaxed Bernoulli mask (training)."""
        u = torch.rand(self.logits.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
        noise = torch.log(u) - torch.log1p(-u)
        return self._keep_one(torch.sigmoid((self.logits + noise) / temperature))

    def hard(self) -> torch.Tensor:
        """The channels inference keeps: a positive logit."""
        return self._keep_one((self.logits > 0).to(self.logits.dtype))

    def top(self, k: int) -> torch.Tensor:
        """The ``k`` channels with the highest logits: a decoded width."""
        mask = torch.zeros_like(self.logits)
        mask[torch.topk(self.logits.detach(), k).indices] = 1.0
        return mask

    def hard_count(self) -> int:
        return int(self.hard().sum())

    def _keep_one(self, mask: torch.Tensor) -> torch.Tensor:
        first = F.one_hot(self.logits.detach().argmax(), len(self.logits)).to(mask.dtype)
        return torch.maximum(mask, first)


class GatedMBConv(nn.Module):
    """An MBConv at its largest shape whose expanded and output channels are masked."""

    def __init__(
        self, cin: int, cout: int, kernel: int, expansion: int, stride: int, act: Activation
    ) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = ConvBNAct(cin, mid, 1, act=act) if expansion > 1 else None
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act)
        self.project = ConvBNAct(mid, cout, 1)

    def forward(
        self, x: torch.Tensor, mid_mask: torch.Tensor | None, out_mask: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.expand(x) if self.expand is not None else x
        h = self.depthwise(h)
        if mid_mask is not None:
            h = h * mid_mask.view(1, -1, 1, 1)
        out: torch.Tensor = self.project(h)
        return out * out_mask.view(1, -1, 1, 1) if out_mask is not None else out


@dataclass(frozen=True)
class _Slot:
    residual: bool
    width_decision: int | None  # the stage's width gate
    mid_decision: int | None  # this layer's expansion gate


Masks = Sequence[torch.Tensor | None]  # one per decision of the space


class GatedSupernet(nn.Module):
    """A channel space (``predictor.channel_cost.channel_decisions``) with a gate per decision.

    ``forward(x, masks)`` takes one mask per decision: :meth:`sample` while training,
    :meth:`masks_of` for a decoded architecture.
    """

    def __init__(self, space: SearchSpace, classes: int) -> None:
        super().__init__()
        decisions = channel_decisions(space)  # refuses a space that is not one
        index = {d.name: i for i, d in enumerate(space.decisions)}
        spec = space.spec
        positions = {p.name: p for p in space.positions}
        self.space = space
        self.stem = nn.Sequential(
            *(fixed_module(positions[f"stem{n}"].keys[0], classes) for n in range(len(spec.stem)))
        )
        self.gates = nn.ModuleList()
        self._gate_of: dict[int, int] = {}
        sizes = []
        cin = spec.stem[-1].out if spec.stem else spec.input.channels
        self.blocks = nn.ModuleList()
        self._slots: list[_Slot] = []
        for s, stage in enumerate(spec.stages):
            width = max(stage.widths)
            kernel = Candidate.parse(stage.candidates[0]).kernel
            expansion = max(Candidate.parse(c).expansion for c in stage.candidates)
            width_decision = index.get(f"stage{s}.width")
            if width_decision is not None:
                sizes.append((width_decision, width))
            for slot in range(max(stage.depths)):
                layer_in = cin if slot == 0 else width
                mid_decision = index.get(f"stage{s}.layer{slot}")
                if mid_decision is not None:
                    sizes.append((mid_decision, layer_in * expansion))
                self.blocks.append(
                    GatedMBConv(
                        layer_in,
                        width,
                        kernel,
                        expansion,
                        stage.stride if slot == 0 else 1,
                        Activation(stage.act),
                    )
                )
                self._slots.append(_Slot(slot > 0, width_decision, mid_decision))
            cin = width
        for decision, size in sorted(sizes):
            self._gate_of[decision] = len(self.gates)
            self.gates.append(LogisticSigmoidGate(size))
        self.decisions = decisions
        self.kinds = tuple(d.kind for d in decisions)
        head = [positions[f"head{n}"] for n in range(len(spec.head))]
        widest = [max(p.keys, key=lambda k: (k.cin, k.hw)) for p in head]
        self.head = nn.Sequential(*(fixed_module(k, classes) for k in widest))

    # -- parameters ---------------------------------------------------------------------------

    def gate_parameters(self) -> list[nn.Parameter]:
        return [self.gate(d).logits for d in range(len(self.kinds))]

    def weight_parameters(self) -> list[nn.Parameter]:
        gates = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gates]

    def gate(self, decision: int) -> LogisticSigmoidGate:
        return cast(LogisticSigmoidGate, self.gates[self._gate_of[decision]])

    # -- masks and counts ---------------------------------------------------------------------

    def sample(self, temperature: float, generator: torch.Generator) -> list[torch.Tensor]:
        return [self.gate(d).sample(temperature, generator) for d in range(len(self.kinds))]

    def masks_of(self, channels: Sequence[float]) -> list[torch.Tensor]:
        """The top channels of each gate, as many as ``channels`` (the live channels of an
        architecture: ``ChannelCostModule.channels_of``) says."""
        return [self.gate(d).top(round(c)) for d, c in enumerate(channels)]

    def expected_values(self) -> torch.Tensor:
        """(D,) what the cost prices, from the expected live channels of each gate: a width's
        count, and a layer's expansion as its live share times its largest expansion (its
        expanded channels then follow its input's, as in the network)."""
        return torch.stack(
            [self._value(d, self.gate(d).probability().sum()) for d in range(len(self.kinds))]
        )

    def hard_values(self) -> torch.Tensor:
        """(D,) the same for the channels the gates hold (a positive logit)."""
        return torch.stack(
            [
                self._value(d, torch.tensor(float(self.gate(d).hard_count())))
                for d in range(len(self.kinds))
            ]
        ).to(torch.float64)

    def _value(self, decision: int, live: torch.Tensor) -> torch.Tensor:
        if self.kinds[decision] == "width":
            return live
        largest = max(self.decisions[decision].values)
        return live / len(self.gate(decision).logits) * largest

    # -- the network --------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, masks: Masks) -> torch.Tensor:
        h = self.stem(x)
        for block, slot in zip(self.blocks, self._slots, strict=True):
            out_mask = None if slot.width_decision is None else masks[slot.width_decision]
            mid_mask = None if slot.mid_decision is None else masks[slot.mid_decision]
            out = block(h, mid_mask, out_mask)
            h = h + out if slot.residual else out
        result: torch.Tensor = self.head(h)
        return result
