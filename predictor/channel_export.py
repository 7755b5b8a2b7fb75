"""Build a :class:`~predictor.channel_cost.ChannelCost` from a compiled predictor (NumPy)."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from models.features import FEATURES, feature_matrix
from models.layer_key import LayerKey, Op
from predictor.artifact import PredictorArtifact
from predictor.channel_cost import (
    MIN_LINEAR_MS,
    ChannelCost,
    ChannelDecision,
    ChannelLayer,
    NoLayerModel,
    NotAChannelSpace,
    channel_decisions,
    monomial_terms,
)
from predictor.compiled import CompiledSpace


def channel_cost(artifact: PredictorArtifact, compiled: CompiledSpace) -> ChannelCost:
    """The smooth cost of ``compiled``'s space under ``artifact`` (see the module doc)."""
    space = compiled.space
    decisions = channel_decisions(space)
    model = artifact.layer_model
    if model is None:
        raise NoLayerModel(
            f"predictor version {compiled.version} has no layer model (it is an imported table, "
            "or was fitted before layer models); a channel cost prices channel counts between "
            "the measured ones with it: fit the device again (hwlat fit)"
        )
    columns = [FEATURES.index(name) for name in model.features]
    weights = np.asarray(model.coef) / np.asarray(model.scale)
    layers = []
    for j, column in enumerate(compiled.columns):
        offset = int(compiled.offsets[j])
        ms = compiled.flat_ms[offset : offset + len(column.keys)]
        layers.append(
            _layer(column.name, column.parents, column.keys, ms, decisions, columns, weights)
        )
    cal = compiled.calibration
    return ChannelCost(
        space=space.name,
        space_sha256=space.digest,
        predictor_version=compiled.version,
        unit="ms",
        features=model.features,
        weights=tuple(float(w) for w in weights),
        decisions=decisions,
        layers=tuple(layers),
        fixed=compiled.fixed_ms if cal.fixed_in_sum else None,
        a=cal.a,
        b=cal.b,
    )


def _layer(
    name: str,
    parents: tuple[int, ...],
    keys: tuple[LayerKey, ...],
    ms: npt.NDArray[np.float64],
    decisions: tuple[ChannelDecision, ...],
    columns: list[int],
    weights: npt.NDArray[np.float64],
) -> ChannelLayer:
    grid = list(itertools.product(*(range(len(decisions[p].values)) for p in parents)))
    if any(k.op is Op.SKIP for k in keys) or bool(np.any(ms <= 0)):
        raise NotAChannelSpace(
            f"{name} can be skipped or costs nothing; no channel count prices it"
        )
    mid_parents = [p for p in parents if decisions[p].kind == "expansion"]
    points = np.array([monomial_terms(k.cin, k.mid, k.cout) for k in keys], dtype=np.float64)
    features = feature_matrix(list(keys))[:, columns]
    # Exact where the features are multilinear in the channels (all of models.features at a
    # fixed shape); min-norm where channels are tied (a residual layer's cin is its cout).
    basis, *_ = np.linalg.lstsq(points, features, rcond=None)
    linear = np.maximum(points @ basis @ weights, MIN_LINEAR_MS)
    return ChannelLayer(
        name=name,
        parents=parents,
        cin_decision=_source(name, "cin", [k.cin for k in keys], parents, grid, decisions),
        cout_decision=_source(name, "cout", [k.cout for k in keys], parents, grid, decisions),
        mid_decision=mid_parents[0] if mid_parents else None,
        cin=keys[0].cin,
        cout=keys[0].cout,
        expansion=float(keys[0].mid / keys[0].cin),
        basis=tuple(tuple(float(v) for v in row) for row in basis),
        log_correction=tuple(float(v) for v in np.log(ms / linear)),
        table=tuple(float(v) for v in ms),
    )


def _source(
    name: str,
    what: str,
    channels: list[int],
    parents: tuple[int, ...],
    grid: list[tuple[int, ...]],
    decisions: tuple[ChannelDecision, ...],
) -> int | None:
    """The width decision a layer's ``cin`` or ``cout`` is, or None where it is constant."""
    if len(set(channels)) == 1:
        return None
    for at, parent in enumerate(parents):
        decision = decisions[parent]
        if decision.kind == "width" and all(
            c == decision.values[point[at]] for c, point in zip(channels, grid, strict=True)
        ):
            return parent
    raise NotAChannelSpace(f"{name}: its {what} is no stage width of the space")
