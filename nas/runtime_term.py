"""The differentiable runtime term R of Single-Path NAS, built from a device's runtime table.

Per layer, the superkernel's indicators (see :mod:`nas.superkernel`) pick a corner of the
table; R is the calibrated sum over the layers, ``R = a * sum_l R_l + offset`` with the
offset ``a * fixed_ms + b`` (or ``b``), exactly as the service predicts a whole network.

Two forms of ``R_l`` are offered:

- ``exact`` (default): the multilinear interpolation of the layer's table entries,
  ``R_l = d_on * sum_corners prod(d or 1 - d) * T[corner] + (1 - d_on) * T[skip]``. At every
  corner (hard indicators) it equals the table entry, so R of the hard indicators is the
  service's prediction of the decoded architecture.
- ``seed``: the paper's form (docs/design.md, section 3), ``Rc = d50c * (T[k5e3] + d100c *
  (T[k5e6] - T[k5e3]))``, ``R_l = Rc * ratio + Rc * (1 - ratio) * d5x5`` with ``ratio =
  T[k3e6] / T[k5e6]`` (SE, where searched, interpolates linearly between the plain and the SE
  form). It equals the table at every corner but k3e3, which it approximates by
  ``T[k5e3] * T[k3e6] / T[k5e6]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import torch
from torch import nn

from latency_api.schemas.predictors import RuntimeTable
from nas.superkernel import EXPAND, KERNEL, ON, SE, LayerGrid


class RuntimeFormula(StrEnum):
    EXACT = "exact"
    SEED = "seed"


class RuntimeTerm(nn.Module):
    """``forward(d)`` maps indicators ``(L, 4)`` to the predicted network latency in ms."""

    corners_ms: torch.Tensor
    skip_ms: torch.Tensor

    def __init__(
        self,
        table: RuntimeTable,
        grids: Sequence[LayerGrid],
        formula: RuntimeFormula = RuntimeFormula.EXACT,
    ) -> None:
        super().__init__()
        if len(table.layers) != len(grids):
            raise ValueError(
                f"runtime table has {len(table.layers)} layers, the supernet {len(grids)}"
            )
        corners = torch.zeros(len(grids), 2, 2, 2, dtype=torch.float64)
        skip = torch.zeros(len(grids), dtype=torch.float64)
        for layer, grid in enumerate(grids):
            for k in range(2):
                for e in range(2):
                    for s in range(2):
                        index = grid.corners[grid.bits(k, e, s)]
                        corners[layer, k, e, s] = table.ms(layer, index)
            if grid.skip_index is not None:
                skip[layer] = table.ms(layer, grid.skip_index)
        if formula is RuntimeFormula.SEED and bool((corners[:, 1, 1, :] <= 0).any()):
            raise ValueError(
                "the seed's runtime formula divides by T[large kernel, high expansion], "
                "which is 0 in this table; use the exact formula"
            )
        self.register_buffer("corners_ms", corners)
        self.register_buffer("skip_ms", skip)
        self.formula = formula
        self.scale = table.calibration.a
        self.offset_ms = table.offset_ms

    def layer_ms(self, d: torch.Tensor) -> torch.Tensor:
        """Per-layer runtime ``R_l`` of indicators ``d`` (L, 4), in ms."""
        corners = self.corners_ms.to(d.dtype)
        kernel, on, expand, se = d[:, KERNEL], d[:, ON], d[:, EXPAND], d[:, SE]
        if self.formula is RuntimeFormula.EXACT:
            wk = torch.stack((1 - kernel, kernel), dim=1)
            we = torch.stack((1 - expand, expand), dim=1)
            ws = torch.stack((1 - se, se), dim=1)
            block = torch.einsum("lk,le,ls,lkes->l", wk, we, ws, corners)
        else:
            per_se = []
            for s in range(2):
                k5e3, k5e6, k3e6 = corners[:, 1, 0, s], corners[:, 1, 1, s], corners[:, 0, 1, s]
                channels = k5e3 + expand * (k5e6 - k5e3)
                ratio = k3e6 / k5e6
                per_se.append(channels * ratio + channels * (1 - ratio) * kernel)
            block = per_se[0] + se * (per_se[1] - per_se[0])
        out: torch.Tensor = on * block + (1 - on) * self.skip_ms.to(d.dtype)
        return out

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor = self.scale * self.layer_ms(d).sum() + self.offset_ms
        return total
