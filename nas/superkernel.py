"""How a searchable layer's candidates fold into one Single-Path superkernel.

Single-Path NAS encodes every candidate of a layer in one MBConv with the largest kernel and
expansion: the small kernel is the core of the large one, the low-expansion channels are the
first ones of the high-expansion block, squeeze-and-excitation is a part that is used or not,
and skip is the whole block switched off. A candidate is then a corner of four binary
indicators, in this column order:

- ``KERNEL``: the outer ring of the large kernel is used (large kernel) or not (small);
- ``ON``: the block is used at all; 0 means skip (only where the layer offers skip);
- ``EXPAND``: the channels beyond the low expansion are used (high expansion) or not;
- ``SE``: the squeeze-and-excitation part is used.

An indicator whose choice the layer does not offer is fixed: ``ON`` at 1 on a layer without
skip, ``KERNEL``/``EXPAND`` at 1 when there is one kernel/expansion, ``SE`` at its only value.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Final

from models import LayerSlot, Op, SearchSpace
from models.errors import UserInputError

KERNEL: Final = 0
ON: Final = 1
EXPAND: Final = 2
SE: Final = 3
N_INDICATORS: Final = 4
INDICATOR_NAMES: Final = ("kernel", "on", "expand", "se")


class NotASuperkernelSpace(UserInputError):
    """A layer whose candidates cannot share one superkernel."""


@dataclass(frozen=True)
class LayerGrid:
    """A searchable layer's candidates as corners of (large kernel, high expansion, SE)."""

    position: int
    kernels: tuple[int, ...]  # ascending; one or two
    expansions: tuple[int, ...]  # ascending; one or two
    se_options: tuple[bool, ...]  # (False,), (True,) or (False, True)
    skip_index: int | None
    # (kernel bit, expansion bit, se bit) -> candidate index; bits index the tuples above,
    # and a dimension with one option has only bit 0.
    corners: dict[tuple[int, int, int], int]

    @property
    def kernel(self) -> int:
        return self.kernels[-1]

    @property
    def expansion(self) -> int:
        return self.expansions[-1]

    @property
    def searches(self) -> tuple[bool, bool, bool, bool]:
        """Per indicator column: is it a real choice on this layer?"""
        return (
            len(self.kernels) == 2,
            self.skip_index is not None,
            len(self.expansions) == 2,
            len(self.se_options) == 2,
        )

    def fixed_value(self, column: int) -> float:
        """The value of an indicator that is not searched on this layer."""
        if column == SE:
            return 1.0 if self.se_options == (True,) else 0.0
        return 1.0

    def bits(self, kernel: float, expand: float, se: float) -> tuple[int, int, int]:
        """Hard indicator values (0/1) to a corner key, collapsing fixed dimensions."""
        k = int(kernel >= 0.5) if len(self.kernels) == 2 else 0
        e = int(expand >= 0.5) if len(self.expansions) == 2 else 0
        s = int(se >= 0.5) if len(self.se_options) == 2 else 0
        return k, e, s

    def candidate(self, indicators: tuple[float, float, float, float]) -> int:
        """Candidate index of hard indicator values in column order."""
        if self.skip_index is not None and indicators[ON] < 0.5:
            return self.skip_index
        return self.corners[self.bits(indicators[KERNEL], indicators[EXPAND], indicators[SE])]

    def indicators(self, index: int) -> tuple[float, float, float, float]:
        """Inverse of :meth:`candidate`: the hard indicators selecting candidate ``index``."""
        if index == self.skip_index:
            return (1.0, 0.0, 1.0, self.fixed_value(SE))
        for (k, e, s), value in self.corners.items():
            if value == index:
                kernel = float(k) if len(self.kernels) == 2 else 1.0
                expand = float(e) if len(self.expansions) == 2 else 1.0
                se = float(s) if len(self.se_options) == 2 else self.fixed_value(SE)
                return (kernel, 1.0, expand, se)
        raise ValueError(f"layer {self.position} has no candidate {index}")


def layer_grid(slot: LayerSlot, position: int) -> LayerGrid:
    """Fold a layer's candidates into a superkernel grid, or raise saying why it cannot be."""
    blocks = {i: c for i, c in enumerate(slot.candidates) if c.op is Op.MBCONV}
    skips = [i for i, c in enumerate(slot.candidates) if c.op is Op.SKIP]
    others = [c.label for c in slot.candidates if c.op not in (Op.MBCONV, Op.SKIP)]
    where = f"searchable layer {position}"
    if others or not blocks:
        raise NotASuperkernelSpace(f"{where}: needs MBConv candidates (and skip), got {others}")
    kernels = tuple(sorted({c.kernel for c in blocks.values()}))
    expansions = tuple(sorted({c.expansion for c in blocks.values()}))
    se_options = tuple(sorted({c.se for c in blocks.values()}))
    if len(kernels) > 2 or len(expansions) > 2:
        raise NotASuperkernelSpace(
            f"{where}: a superkernel nests two kernels and two expansions at most; got "
            f"kernels {kernels} and expansions {expansions}"
        )
    if len(expansions) == 2 and expansions[0] == 1:
        raise NotASuperkernelSpace(
            f"{where}: expansion 1 has no expand conv, so it cannot be the first channels "
            f"of expansion {expansions[1]}"
        )
    corners: dict[tuple[int, int, int], int] = {}
    for index, c in blocks.items():
        corners[
            (kernels.index(c.kernel), expansions.index(c.expansion), se_options.index(c.se))
        ] = index
    wanted = set(product(range(len(kernels)), range(len(expansions)), range(len(se_options))))
    if set(corners) != wanted:
        raise NotASuperkernelSpace(
            f"{where}: candidates {[c.label for c in blocks.values()]} are not every "
            f"combination of kernels {kernels}, expansions {expansions} and SE {se_options}"
        )
    if len(skips) > 1:
        raise NotASuperkernelSpace(f"{where}: lists skip twice")
    return LayerGrid(
        position=position,
        kernels=kernels,
        expansions=expansions,
        se_options=se_options,
        skip_index=skips[0] if skips else None,
        corners=corners,
    )


def space_grids(space: SearchSpace) -> tuple[LayerGrid, ...]:
    try:
        return tuple(layer_grid(slot, n) for n, slot in enumerate(space.layers))
    except NotASuperkernelSpace as error:
        raise NotASuperkernelSpace(f"search space {space.name}: {error}") from None
