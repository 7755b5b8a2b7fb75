"""Runtime-table formats of other tools: the seed's ``pixel1_runtime_model.json`` layout, and
OFA/ProxylessNAS YAML lookup tables keyed as their code queries them. Pure functions; errors
name the offending entry. hwlat's own JSON table is ``latency_api``'s ``RuntimeTable``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import yaml

from models.errors import UserInputError
from models.layer_key import LayerKey, Op
from models.ofa_keys import OfaKeyError, OfaNetwork, needs_mbv3_keys, ofa_name, parse_ofa_name
from models.search_space import SearchSpace
from predictor.artifact import Calibration, LayerEntry, PredictorArtifact
from predictor.compiled import CompiledSpace


class TableFormatError(UserInputError):
    """A runtime table that cannot be read; the message names the bad entry."""


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


# -- OFA / ProxylessNAS lookup tables ---------------------------------------------------------
#
# The key grammar is models.ofa_keys (the estimator in latency_api reads it too); the values
# are as ProxylessNAS's published tables hold them: ``count``, ``mean`` in ms, ``var`` in ms².


@dataclass(frozen=True, slots=True)
class OfaEntry:
    """One row of an OFA table: latency mean and variance (ms, ms²) over ``count`` runs;
    ``count`` 0 marks a value the layer model estimated."""

    mean_ms: float
    var_ms2: float
    count: int


def to_ofa_yaml(
    keys: Iterable[LayerKey],
    values: Mapping[str, OfaEntry],
    network: OfaNetwork = OfaNetwork.PROXYLESS,
) -> str:
    """``name: {count, mean, var}`` per layer, in ``keys`` order, as OFA's tables read it.

    ``network``'s table names the layers (``models.ofa_keys.network_of_space``). In a
    ProxylessNAS-style table, one whose blocks have SE or h-swish uses MBv3LatencyTable's block
    keys throughout (its consumers query every block that way); any other uses
    ProxylessNASLatencyTable's.
    """
    keys = list(keys)
    mbv3 = needs_mbv3_keys(keys)
    table: dict[str, dict[str, float | int]] = {}
    for key in keys:
        entry = values[str(key)]
        try:
            name = ofa_name(key, mbv3, network=network)
        except OfaKeyError as error:
            raise TableFormatError(str(error)) from None
        table[name] = {"count": entry.count, "mean": entry.mean_ms, "var": entry.var_ms2}
    return yaml.safe_dump(table, sort_keys=False)


def read_ofa_yaml(
    text: str, network: OfaNetwork = OfaNetwork.PROXYLESS
) -> dict[LayerKey, OfaEntry]:
    """Every entry of an OFA table by the layer it names in ``network``'s table; errors name
    the entry."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TableFormatError(f"not YAML: {error}") from None
    if not isinstance(data, dict) or not data:
        raise TableFormatError("a lookup table is a YAML mapping of layer names to {mean: ms}")
    entries: dict[LayerKey, OfaEntry] = {}
    named: dict[LayerKey, str] = {}
    for name, row in data.items():
        try:
            key = parse_ofa_name(str(name), network=network)
        except OfaKeyError as error:
            raise TableFormatError(str(error)) from None
        if key in named:
            raise TableFormatError(f"{name!r} and {named[key]!r} name the same layer ({key})")
        named[key] = str(name)
        entries[key] = _entry(str(name), row)
    return entries


def _entry(name: str, row: Any) -> OfaEntry:
    if not isinstance(row, dict):
        raise TableFormatError(f"{name!r}: expected {{mean: ms, var: ms², count: n}}, got {row!r}")
    mean = row.get("mean")
    if not _number(mean) or not math.isfinite(mean) or mean <= 0:
        raise TableFormatError(f"{name!r}: mean {mean!r} is not a positive latency in ms")
    # ProxylessNAS's tables give the variance; hwlat's earlier exports gave the deviation.
    spread = "var" if "var" in row else "std"
    value = row.get(spread, 0.0)
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise TableFormatError(f"{name!r}: {spread} {value!r} is not a non-negative spread")
    var = value if spread == "var" else value * value
    count = row.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise TableFormatError(f"{name!r}: count {count!r} is not a number of runs")
    return OfaEntry(float(mean), float(var), count)


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def from_ofa_yaml(text: str, network: OfaNetwork = OfaNetwork.PROXYLESS) -> PredictorArtifact:
    """An OFA table as a predictor version: each entry becomes its layer's imported value."""
    layers = {
        str(key): LayerEntry(
            ms=entry.mean_ms,
            source="imported",
            n=entry.count,
            spread_pct=100 * math.sqrt(entry.var_ms2) / entry.mean_ms,
        )
        for key, entry in read_ofa_yaml(text, network).items()
    }
    return PredictorArtifact(layers=layers)
