"""A device's latency (or MorphNet's FLOPs) as a torch function of real-valued channel counts.

Built from the service's channel cost (``GET /v1/devices/{id}/channel-cost``; the form and its
formula are in :mod:`predictor.channel_cost`): one tensor in, ``values`` with one entry per
decision of the space (a stage's output channels; a layer's expansion ratio), one cost out,
differentiable in every entry. At the values of any architecture of the space
(:meth:`ChannelCostModule.values_of`) it equals the predictor's latency for it, which is what
``POST /v1/predict`` answers.

Outside the space's range a value is clamped to it (the space has no narrower layer to price):
its gradient is then zero, and the channel gates there answer to the task loss alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from predictor.calibration import calibrated_offset_ms
from predictor.channel_cost import MIN_LINEAR_MS, ChannelCost, ChannelLayer, monomial_terms


class ChannelCostModule(nn.Module):
    """``forward(values)`` (D,) -> the total cost in ``cost.unit``; float64 throughout."""

    polynomials: torch.Tensor

    def __init__(self, cost: ChannelCost) -> None:
        super().__init__()
        self.cost = cost
        self.unit = cost.unit
        self.predictor_version = cost.predictor_version
        self.offset = calibrated_offset_ms(cost, cost.fixed)
        weights = torch.tensor(cost.weights, dtype=torch.float64)
        # Each layer's linear cost per monomial: basis (8, F) @ weights (F,).
        self.register_buffer(
            "polynomials",
            torch.stack(
                [torch.tensor(layer.basis, dtype=torch.float64) @ weights for layer in cost.layers]
            ),
        )
        self._corrections = [
            torch.tensor(layer.log_correction, dtype=torch.float64) for layer in cost.layers
        ]
        self._choices = [torch.tensor(d.values, dtype=torch.float64) for d in cost.decisions]
        # Which layer's input an expansion decision multiplies (its mid = expansion * cin).
        self._expanded_by = {
            layer.mid_decision: n
            for n, layer in enumerate(cost.layers)
            if layer.mid_decision is not None
        }

    # -- the cost ----------------------------------------------------------------------------

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor = self.cost.a * self.layer_costs(values).sum() + self.offset
        return total

    def layer_costs(self, values: torch.Tensor) -> torch.Tensor:
        """(L,) the cost of each layer that depends on a decision, before calibration."""
        if values.shape != (len(self.cost.decisions),):
            raise ValueError(
                f"values must hold one value per decision of {self.cost.space} (a width in "
                f"channels, an expansion ratio): {len(self.cost.decisions)}, not shape "
                f"{tuple(values.shape)}"
            )
        values = values.to(torch.float64)
        out = []
        for n, layer in enumerate(self.cost.layers):
            cin, mid, cout = self._channels(layer, values)
            terms = torch.stack(monomial_terms(cin, mid, cout))
            linear = torch.clamp(terms @ self.polynomials[n], min=MIN_LINEAR_MS)
            out.append(linear * torch.exp(self._correction(n, layer, cin, mid, values)))
        return torch.stack(out)

    def _width(self, decision: int | None, constant: int, values: torch.Tensor) -> torch.Tensor:
        if decision is None:
            return torch.tensor(float(constant), dtype=torch.float64)
        choices = self._choices[decision]
        return torch.clamp(values[decision], float(choices.min()), float(choices.max()))

    def _channels(
        self, layer: ChannelLayer, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cin = self._width(layer.cin_decision, layer.cin, values)
        cout = self._width(layer.cout_decision, layer.cout, values)
        if layer.mid_decision is None:
            return cin, layer.expansion * cin, cout
        ratios = self._choices[layer.mid_decision]
        ratio = torch.clamp(values[layer.mid_decision], float(ratios.min()), float(ratios.max()))
        return cin, ratio * cin, cout

    def _correction(
        self,
        n: int,
        layer: ChannelLayer,
        cin: torch.Tensor,
        mid: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        """The log correction, multilinear between the layer's keys."""
        weights = torch.ones(1, dtype=torch.float64)
        for parent in layer.parents:
            coordinate = (
                mid / cin if self.cost.decisions[parent].kind == "expansion" else values[parent]
            )
            # Row-major: the last parent varies fastest.
            weights = torch.outer(weights, hat_weights(self._choices[parent], coordinate)).flatten()
        return weights @ self._corrections[n]

    # -- architectures ------------------------------------------------------------------------

    def values_of(self, architecture: Sequence[int]) -> torch.Tensor:
        """The values of an architecture of the space (widths in channels, expansion ratios):
        where the cost is the predictor's."""
        decisions = self.cost.decisions
        if len(architecture) != len(decisions):
            raise ValueError(
                f"{self.cost.space} has {len(decisions)} decisions, not {len(architecture)}"
            )
        values = [d.values[i] for d, i in zip(decisions, architecture, strict=True)]
        return torch.tensor(values, dtype=torch.float64)

    def channels_of(self, architecture: Sequence[int]) -> list[float]:
        """Live channels per decision of an architecture: a stage's output channels, a layer's
        expanded channels (its expansion times its input's channels)."""
        values = self.values_of(architecture).tolist()
        channels = list(values)
        for d, n in self._expanded_by.items():
            layer = self.cost.layers[n]
            cin = layer.cin if layer.cin_decision is None else values[layer.cin_decision]
            channels[d] = values[d] * cin
        return channels

    def narrowest(self) -> tuple[int, ...]:
        """The architecture with every decision at its smallest value."""
        return tuple(
            min(range(len(d.values)), key=d.values.__getitem__) for d in self.cost.decisions
        )

    def widest(self) -> tuple[int, ...]:
        """The architecture with every decision at its largest value."""
        return tuple(
            max(range(len(d.values)), key=d.values.__getitem__) for d in self.cost.decisions
        )

    def nearest(self, values: torch.Tensor) -> tuple[int, ...]:
        """The architecture nearest ``values``: each width and expansion rounded to its nearest
        choice."""
        return tuple(
            _closest(decision.values, float(values[d]))
            for d, decision in enumerate(self.cost.decisions)
        )

    def of(self, architecture: Sequence[int]) -> float:
        """The cost of an architecture of the space (the predictor's, for a latency cost)."""
        with torch.no_grad():
            return float(self(self.values_of(architecture)))


def hat_weights(choices: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation weights of ``x`` over ``choices`` (any order): the two
    neighbours share 1 in proportion to nearness; ``x`` is clamped to the choices' range."""
    if len(choices) == 1:
        return torch.ones(1, dtype=choices.dtype)
    order = torch.argsort(choices)
    ordered = choices[order]
    x = torch.clamp(x, float(ordered[0]), float(ordered[-1]))
    k = int(torch.searchsorted(ordered, x.detach().reshape(1), right=True)[0]) - 1
    k = min(max(k, 0), len(ordered) - 2)
    t = (x - ordered[k]) / (ordered[k + 1] - ordered[k])
    index = torch.tensor([int(order[k]), int(order[k + 1])])
    return torch.zeros(len(choices), dtype=choices.dtype).index_add(
        0, index, torch.stack((1 - t, t))
    )


def _closest(options: Sequence[float], value: float) -> int:
    return min(range(len(options)), key=lambda i: (abs(options[i] - value), options[i]))
