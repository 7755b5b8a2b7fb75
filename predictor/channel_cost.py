"""A space's latency as a smooth function of its channel counts: what a FiGS search trains on.

FiGS (Mei et al. 2020) and MorphNet gate every channel and price a network by how many channels
are live, a real number during training. The predictor prices the space's layer keys, integer
channel counts at the space's choices. This module turns a compiled predictor into a function
of real-valued channel counts that equals it at every architecture of the space:

    ms_l(cin, mid, cout) = lin_l(cin, mid, cout) · exp(corr_l)
    latency = a · (Σ_l ms_l + fixed_ms) + b        (or a · Σ_l ms_l + b; see calibration)

- ``lin_l``, the layer model's linear cost ``φ(key) · w``. Every feature of
  ``models.features`` is a polynomial in the channel counts at a fixed layer shape, multilinear
  in ``(cin, mid, cout)``: each layer gets a basis ``B_l`` from the eight monomials ``1, cin,
  mid, cout, cin·mid, cin·cout, mid·cout, cin·mid·cout`` to the features, solved exactly on its
  own keys, so ``lin_l = monomials · B_l · w`` prices fractional channels as the model would.
- ``corr_l``, the log of what the predictor says at each of the layer's keys (a measured
  layer's own median, the layer model's carried residuals and GP) over ``lin_l`` there,
  interpolated multilinearly between the keys along the decisions the layer depends on.

A *decision* of such a space is a stage's width (its value: output channels) or a layer's
expansion (its value: the ratio ``mid / cin``, so that the expanded channels follow the
input's, as they do in the network). Spaces whose decisions also pick resolution, depth,
kernel, SE or skip are not channel spaces; they are refused with the reason.

This module holds the form, plain data without NumPy (the client parses it):
``predictor.channel_export`` builds it from a compiled predictor, the service serves it as JSON
(``GET /v1/devices/{id}/channel-cost``), and ``nas.channel_cost`` evaluates it in torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypeVar

from models.errors import UserInputError
from models.layer_key import Op
from models.search_space import Candidate, Decision, Position, SearchSpace

# 1: the first form (schema of ChannelCost below).
FORMAT_VERSION: Final = 1
MONOMIALS: Final = (
    "1",
    "cin",
    "mid",
    "cout",
    "cin*mid",
    "cin*cout",
    "mid*cout",
    "cin*mid*cout",
)
# The layer model's own floor on a linear cost (predictor.layer_model.LayerModel.linear_ms).
MIN_LINEAR_MS: Final = 1e-6
DecisionKind = Literal["width", "expansion"]
CostUnit = Literal["ms", "MFLOPs"]
T = TypeVar("T", bound=Any)
# The features that count multiply-accumulates; their sum is ``LayerKey.macs``.
MAC_FEATURES: Final = ("pointwise_macs", "depthwise_macs", "dense_macs", "se_macs")
_WIDTH_RE: Final = re.compile(r"^stage\d+\.width$")
_LAYER_RE: Final = re.compile(r"^stage\d+\.layer\d+$")


class NotAChannelSpace(UserInputError):
    """A space whose decisions are not channel counts only."""


class NoLayerModel(UserInputError):
    """A predictor version without a layer model cannot price fractional channels."""


@dataclass(frozen=True)
class ChannelDecision:
    name: str
    kind: DecisionKind
    # Widths: output channels; expansions: the ratio mid / cin of each choice.
    values: tuple[float, ...]


@dataclass(frozen=True)
class ChannelLayer:
    name: str
    parents: tuple[int, ...]  # decisions its key depends on (row-major grid, last fastest)
    # The width decision a channel count is, or None: the constant ``cin`` / ``cout``.
    cin_decision: int | None
    cout_decision: int | None
    # The expansion decision whose value times ``cin`` is ``mid``; None: the fixed ``expansion``.
    mid_decision: int | None
    cin: int
    cout: int
    expansion: float
    basis: tuple[tuple[float, ...], ...]  # (8 monomials, F features)
    log_correction: tuple[float, ...]  # per grid point: log(predictor / linear cost)
    table: tuple[float, ...]  # per grid point: what the predictor says (the runtime table)


@dataclass(frozen=True)
class ChannelCost:
    """Every cost is in ``unit``: ms for a device's latency, MFLOPs for :func:`flop_cost`."""

    space: str
    space_sha256: str
    predictor_version: int
    unit: CostUnit
    features: tuple[str, ...]
    weights: tuple[float, ...]  # cost per unit of each raw feature
    decisions: tuple[ChannelDecision, ...]
    layers: tuple[ChannelLayer, ...]
    fixed: float | None  # the fixed parts' cost; None: the calibration's b stands for them
    a: float
    b: float
    format_version: int = FORMAT_VERSION

    @property
    def fixed_in_sum(self) -> bool:
        """As ``predictor.calibration.Linear``: the total is ``a · (Σ + fixed) + b``."""
        return self.fixed is not None


def monomial_terms(cin: T, mid: T, cout: T) -> list[T]:
    """The terms of :data:`MONOMIALS`, for floats, NumPy arrays or torch tensors alike."""
    one = cin * 0 + 1  # the type of the inputs, whatever it is
    return [one, cin, mid, cout, cin * mid, cin * cout, mid * cout, cin * mid * cout]


def flop_cost(cost: ChannelCost, space: SearchSpace) -> ChannelCost:
    """MorphNet's FLOP cost of the same channels, in MFLOPs (2 per MAC, as its flop function
    counts them): the MAC features (their sum is ``LayerKey.macs``) weighted 2e-6, nothing
    else, no correction and no calibration. Its layers share the latency cost's basis, so both
    are evaluated by the same code."""
    missing = [name for name in MAC_FEATURES if name not in cost.features]
    if missing:
        raise ValueError(f"the cost's features lack {', '.join(missing)}: no FLOPs from it")
    if space.digest != cost.space_sha256:
        raise ValueError(f"{space.name} is not the space this cost was built for")
    layers = tuple(
        replace(
            layer,
            log_correction=(0.0,) * len(layer.log_correction),
            table=tuple(2e-6 * k.macs for k in position.keys),
        )
        for layer, position in zip(cost.layers, _columns(space), strict=True)
    )
    fixed = sum(2e-6 * p.keys[0].macs for p in space.positions if not p.parents)
    return replace(
        cost,
        unit="MFLOPs",
        weights=tuple(2e-6 if name in MAC_FEATURES else 0.0 for name in cost.features),
        layers=layers,
        fixed=fixed,
        a=1.0,
        b=0.0,
    )


def _columns(space: SearchSpace) -> list[Position]:
    return [p for p in space.positions if p.parents]


def channel_decisions(space: SearchSpace) -> tuple[ChannelDecision, ...]:
    """The space's decisions as channel counts; raise naming the first that is not one."""
    out = []
    for decision in space.decisions:
        if _WIDTH_RE.match(decision.name):
            out.append(
                ChannelDecision(decision.name, "width", tuple(float(c) for c in decision.choices))
            )
            continue
        if _LAYER_RE.match(decision.name):
            out.append(ChannelDecision(decision.name, "expansion", _expansions(decision)))
            continue
        raise NotAChannelSpace(
            f"{space.name} decides {decision.name}; a channel search (FiGS) needs a space "
            "whose decisions are stage widths and layer expansions only, at one resolution "
            "and depth (e.g. figs-mbv2-224)"
        )
    if not out:
        raise NotAChannelSpace(f"{space.name} has no decisions to search")
    return tuple(out)


def _expansions(decision: Decision) -> tuple[float, ...]:
    candidates = [Candidate.parse(label) for label in decision.choices]
    shapes = {(c.op, c.kernel, c.se) for c in candidates}
    if len(shapes) != 1 or candidates[0].op is Op.SKIP:
        raise NotAChannelSpace(
            f"{decision.name} chooses among {', '.join(decision.choices)}; a channel search "
            "needs layer choices that differ in expansion only (one kernel, no SE choice, no "
            "skip)"
        )
    return tuple(float(c.expansion) for c in candidates)
