"""Runtime-table formats: hwlat JSON, the seed's ``pixel1_runtime_model.json`` layout, and an
OFA/ProxylessNAS-style YAML lookup table. Pure functions; errors name the offending entry."""

from __future__ import annotations

import math
import re
from typing import Any, Final

import yaml

from models.layer_key import LayerKey, Op
from models.search_space import SearchSpace
from predictor.artifact import Calibration, LayerEntry, PredictorArtifact
from predictor.compiled import CompiledSpace


class TableFormatError(ValueError):
    """A runtime table that cannot be read; the message names the bad entry."""


# -- hwlat JSON ----------------------------------------------------------------------------


def to_json(compiled: CompiledSpace) -> dict[str, Any]:
    space = compiled.space
    layers = []
    for position, slot in enumerate(space.layers):
        layers.append(
            {
                "position": position,
                "candidates": [
                    {
                        "index": c,
                        "candidate": slot.candidates[c].label,
                        "layer_key": str(slot.key(c)),
                        "ms": float(compiled.table_ms[position, c]),
                        "estimated": bool(compiled.estimated[position, c]),
                    }
                    for c in range(len(slot.candidates))
                ],
            }
        )
    cal = compiled.calibration
    return {
        "space": space.name,
        "predictor_version": compiled.version,
        "layers": layers,
        "fixed_ms": compiled.fixed_ms if cal.fixed_in_sum else None,
        "calibration": {"a": cal.a, "b": cal.b, "fixed_in_sum": cal.fixed_in_sum},
    }


# -- the seed's layout -----------------------------------------------------------------------


def _non_skip(space: SearchSpace, position: int) -> list[int]:
    slot = space.layers[position]
    return [c for c, cand in enumerate(slot.candidates) if cand.op is not Op.SKIP]


def to_spnas(compiled: CompiledSpace, fixed: dict[str, float]) -> dict[str, dict[str, float]]:
    """Blocks "0".."L+1" -> {"0": k3e3, ...} in ms.

    Block 0 is the last fixed layer before the searchable ones and block L+1 the first after,
    as in the seed; a fixed block has one latency, repeated under every candidate index, and
    is left out when ``fixed`` lacks it (an imported table that had only a constant). Skip is
    left out, as the seed's file leaves it out.
    """
    space = compiled.space
    width = len(_non_skip(space, 0))
    out: dict[str, dict[str, float]] = {}
    before = str(space.prefix[-1]) if space.prefix else None
    if before in fixed:
        out["0"] = {str(c): fixed[before] for c in range(width)}
    for position in range(space.num_layers):
        out[str(position + 1)] = {
            str(c): float(compiled.table_ms[position, c]) for c in _non_skip(space, position)
        }
    after = str(space.suffix[0]) if space.suffix else None
    if after in fixed:
        out[str(space.num_layers + 1)] = {str(c): fixed[after] for c in range(width)}
    return out


def from_spnas(data: Any, space: SearchSpace, constant_ms: float) -> PredictorArtifact:
    """A per-position table: latency = Σ table[l][choice] + constant_ms (skip = 0)."""
    if not isinstance(data, dict):
        raise TableFormatError("a seed-layout table is a JSON object of blocks '0'..'N'")
    if not math.isfinite(constant_ms) or constant_ms < 0:
        raise TableFormatError(f"constant_ms={constant_ms} must be a finite, non-negative number")
    rows: list[list[float]] = []
    for position in range(space.num_layers):
        block = str(position + 1)
        entry = data.get(block)
        if not isinstance(entry, dict):
            raise TableFormatError(
                f"block {block!r} (searchable layer {position}) is missing; "
                f"{space.name} needs blocks '1'..'{space.num_layers}'"
            )
        slot = space.layers[position]
        row = [0.0] * len(slot.candidates)
        for c in _non_skip(space, position):
            value = entry.get(str(c))
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise TableFormatError(
                    f"block {block!r}, candidate '{c}' ({slot.candidates[c].label}): "
                    f"{value!r} is not a positive latency in ms"
                )
            row[c] = float(value)
        rows.append(row)
    return PredictorArtifact(
        positions={space.name: rows},
        calibration={space.name: Calibration(a=1.0, b=constant_ms, fixed_in_sum=False)},
    )


# -- OFA / ProxylessNAS-style YAML ------------------------------------------------------------

_OFA_MBCONV: Final = re.compile(
    r"^expanded_conv-input:(\d+)x(\d+)x(\d+)-output:(\d+)x(\d+)x(\d+)-expand:(\d+)"
    r"-kernel:(\d+)-stride:(\d+)-idskip:([01])(-se:1)?$"
)
_OFA_CONV: Final = re.compile(
    r"^Conv-input:(\d+)x(\d+)x(\d+)-output:(\d+)x(\d+)x(\d+)-kernel:(\d+)$"
)
_OFA_HEAD: Final = re.compile(r"^head-input:(\d+)x(\d+)x(\d+)-feature:(\d+)-output:(\d+)$")


def ofa_name(key: LayerKey) -> str:
    size_in = f"{key.hw}x{key.hw}x{key.cin}"
    if key.op is Op.MBCONV:
        name = (
            f"expanded_conv-input:{size_in}-output:{key.hw_out}x{key.hw_out}x{key.cout}"
            f"-expand:{key.expansion}-kernel:{key.kernel}-stride:{key.stride}"
            f"-idskip:{int(key.has_residual)}"
        )
        return name + ("-se:1" if key.se else "")
    if key.op is Op.CONV:
        return (
            f"Conv-input:{size_in}-output:{key.hw_out}x{key.hw_out}x{key.cout}-kernel:{key.kernel}"
        )
    if key.op is Op.HEAD:
        return f"head-input:{size_in}-feature:{key.cout}-output:{key.classes}"
    raise TableFormatError(f"{key} has no entry in a lookup table (skip costs nothing)")


def parse_ofa_name(name: str) -> LayerKey:
    if match := _OFA_MBCONV.match(name):
        h, w, cin, ho, wo, cout, e, k, s, idskip, se = match.groups()
        key = LayerKey(
            Op.MBCONV, int(h), int(cin), int(cout), int(k), int(e), int(s), se is not None
        )
        if h != w or ho != wo or key.hw_out != int(ho) or key.has_residual != (idskip == "1"):
            raise TableFormatError(f"{name!r}: shapes, stride and idskip do not agree")
        return key
    if match := _OFA_CONV.match(name):
        h, w, cin, ho, wo, cout, k = match.groups()
        stride = int(h) // int(ho)
        key = LayerKey(Op.CONV, int(h), int(cin), int(cout), kernel=int(k), stride=stride)
        if h != w or ho != wo or key.hw_out != int(ho):
            raise TableFormatError(f"{name!r}: input and output sizes do not agree")
        return key
    if match := _OFA_HEAD.match(name):
        h, w, cin, feature, classes = match.groups()
        if h != w:
            raise TableFormatError(f"{name!r}: non-square input")
        return LayerKey(Op.HEAD, int(h), int(cin), int(feature), classes=int(classes))
    raise TableFormatError(
        f"unknown lookup-table entry {name!r}; expected expanded_conv-..., Conv-... or head-..."
    )


def to_ofa_yaml(keys: list[LayerKey], lookup_ms: dict[str, tuple[float, float, int]]) -> str:
    """``name: {mean, std, count}`` per layer, as ProxylessNAS's LatencyEstimator reads it."""
    table = {
        ofa_name(key): {"mean": ms, "std": std, "count": count}
        for key in keys
        for ms, std, count in [lookup_ms[str(key)]]
    }
    return yaml.safe_dump(table, sort_keys=False)


def from_ofa_yaml(text: str) -> PredictorArtifact:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TableFormatError(f"not YAML: {error}") from None
    if not isinstance(data, dict) or not data:
        raise TableFormatError("a lookup table is a YAML mapping of layer names to {mean: ms}")
    layers: dict[str, LayerEntry] = {}
    for name, entry in data.items():
        key = parse_ofa_name(str(name))
        mean = entry.get("mean") if isinstance(entry, dict) else None
        if not isinstance(mean, int | float) or not math.isfinite(mean) or mean <= 0:
            raise TableFormatError(f"{name!r}: mean {mean!r} is not a positive latency in ms")
        std = float(entry.get("std", 0.0) or 0.0)
        count = int(entry.get("count", 1) or 1)
        layers[str(key)] = LayerEntry(
            ms=float(mean), source="imported", n=count, spread_pct=100 * std / float(mean)
        )
    return PredictorArtifact(layers=layers)
