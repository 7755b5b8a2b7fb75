"""Once-for-All's own encoding of an architecture, to and from hwlat's flat one.

OFA describes a subnet of its elastic networks as ``{"ks": [...], "e": [...], "d": [...],
"r": [224]}`` (``OFAMobileNetV3.set_active_subnet(ks, e, d)`` and the resolution; see
mit-han-lab/once-for-all at f03b2673, ofa/imagenet_classification/elastic_nn/networks/): ``ks``
and ``e`` hold a kernel and an expansion for every layer slot of every stage, the ones past a
stage's depth included (OFA ignores them), ``d`` a depth per stage (OFA clamps it to the
stage's size, so the single-layer last stage of ProxylessNAS takes any), ``r`` the resolution.
A space whose stages choose their layers among ``k<K>e<E>`` candidates has this encoding.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from models.errors import UserInputError
from models.search_space import Candidate, SearchSpace


class OfaConfigError(UserInputError):
    """A config that does not describe an architecture of the space; the message says why."""


def _slots(space: SearchSpace) -> list[tuple[int, int]]:
    """(stage, slot) of every layer slot, in order."""
    return [
        (s, slot) for s, stage in enumerate(space.spec.stages) for slot in range(max(stage.depths))
    ]


def _decision(space: SearchSpace, name: str) -> int | None:
    for index, decision in enumerate(space.decisions):
        if decision.name == name:
            return index
    return None


def from_ofa_config(space: SearchSpace, config: Mapping[str, Any]) -> tuple[int, ...]:
    """The flat architecture of ``space`` that OFA's ``config`` names."""
    unknown = set(config) - {"ks", "e", "d", "r"}
    if unknown:
        raise OfaConfigError(
            f"OFA config has {sorted(unknown)}; it takes ks, e, d and r (resolution)"
        )
    slots = _slots(space)
    stages = space.spec.stages
    ks, e, d = (_ints(config, name) for name in ("ks", "e", "d"))
    if len(ks) != len(slots) or len(e) != len(slots):
        raise OfaConfigError(
            f"ks has {len(ks)} and e {len(e)} entries; {space.name} has {len(slots)} layer "
            "slots (one entry each, the ones past a stage's depth too)"
        )
    if len(d) != len(stages):
        raise OfaConfigError(f"d has {len(d)} entries; {space.name} has {len(stages)} stages")
    arch = [0] * space.num_layers
    resolution = config.get("r", [max(space.resolutions)])
    r = resolution[0] if isinstance(resolution, Sequence) and resolution else resolution
    if not isinstance(r, numbers.Integral) or r not in space.resolutions:
        raise OfaConfigError(
            f"r {resolution!r}: {space.name} takes one of {list(space.resolutions)}"
        )
    _set(arch, _decision(space, "resolution"), space.resolutions.index(int(r)))
    for s, (stage, depth) in enumerate(zip(stages, d, strict=True)):
        # OFA clamps a depth to the stage's layers: runtime_depth = min(len(group), d).
        clamped = min(depth, max(stage.depths))
        if clamped not in stage.depths:
            raise OfaConfigError(f"d[{s}] {depth}: stage {s} runs {list(stage.depths)} layers")
        _set(arch, _decision(space, f"stage{s}.depth"), stage.depths.index(clamped))
    for n, ((s, slot), kernel, expansion) in enumerate(zip(slots, ks, e, strict=True)):
        labels = [Candidate.parse(c) for c in stages[s].candidates]
        matches = [
            i for i, c in enumerate(labels) if (c.kernel, c.expansion) == (kernel, expansion)
        ]
        if not matches:
            offered = sorted({(c.kernel, c.expansion) for c in labels})
            raise OfaConfigError(
                f"slot {n} (stage {s}, layer {slot}): kernel {kernel} expansion {expansion} is "
                f"no candidate there; it offers (kernel, expansion) {offered}"
            )
        _set(arch, _decision(space, f"stage{s}.layer{slot}"), matches[0])
    return space.validate(arch)


def to_ofa_config(space: SearchSpace, arch: Sequence[int]) -> dict[str, Any]:
    """OFA's config of a flat architecture of ``space``."""
    chosen = space.validate(arch)

    def pick(name: str, default: int) -> int:
        index = _decision(space, name)
        return default if index is None else chosen[index]

    ks: list[int] = []
    e: list[int] = []
    d: list[int] = []
    for s, stage in enumerate(space.spec.stages):
        d.append(stage.depths[pick(f"stage{s}.depth", 0)])
        for slot in range(max(stage.depths)):
            candidate = Candidate.parse(stage.candidates[0])
            index = pick(f"stage{s}.layer{slot}", 0)
            if index < len(stage.candidates):
                candidate = Candidate.parse(stage.candidates[index])
            else:
                raise OfaConfigError(
                    f"stage {s}, layer {slot} skips; OFA's config has no skip (use depth)"
                )
            ks.append(candidate.kernel)
            e.append(candidate.expansion)
    return {"ks": ks, "e": e, "d": d, "r": [space.resolutions[pick("resolution", 0)]]}


def _ints(config: Mapping[str, Any], name: str) -> list[int]:
    values = config.get(name)
    if (
        not isinstance(values, Sequence)
        or isinstance(values, str)
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values)
    ):
        raise OfaConfigError(f"{name} must be a list of integers, got {values!r}")
    return [int(v) for v in values]


def _set(arch: list[int], decision: int | None, value: int) -> None:
    if decision is not None:
        arch[decision] = value
