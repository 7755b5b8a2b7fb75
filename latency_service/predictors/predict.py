"""Answering a predict request from a compiled predictor."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.predictors import (
    MAX_ARCHITECTURES,
    MAX_LAYER_KEYS,
    EstimatedLayer,
    OfaConfig,
    PredictIn,
    PredictOut,
)
from latency_service.errors import BatchTooLarge, InvalidInput
from latency_service.predictors.service import CompiledCache, PredictorIncomplete
from latency_service.spaces import space_or_404
from models import InvalidArchitecture, LayerKey, SearchSpace, parse
from models.ofa_config import OfaConfigError, from_ofa_config
from predictor.artifact import Calibration, NoMetricModel, PredictorArtifact
from predictor.calibration import calibrated_ms, calibrated_uncertainty_ms
from predictor.compiled import CalibratedOnAnotherSpec, CompiledSpace, MissingLayers, lookup
from predictor.memory_energy import predict_energy_mj, predict_memory_mb


def predict(session: Session, cache: CompiledCache, request: PredictIn) -> PredictOut:
    count = len(request.architectures or request.ofa_configs or request.layers or [])
    noun = "networks" if request.layers is not None else "architectures"
    if count > MAX_ARCHITECTURES:
        raise BatchTooLarge(
            f"{count} {noun} in one request; the limit is {MAX_ARCHITECTURES}, split it"
        )
    keys = sum(len(network) for network in request.layers or [])
    if keys > MAX_LAYER_KEYS:
        raise BatchTooLarge(
            f"{keys} layer keys in one request; the limit is {MAX_LAYER_KEYS}, split it"
        )
    if request.layers is None:
        return _by_architecture(session, cache, request)
    return _by_layers(session, cache, request)


def _by_architecture(session: Session, cache: CompiledCache, request: PredictIn) -> PredictOut:
    space = space_or_404(str(request.space))
    compiled = cache.compiled(session, request.device_id, space)
    rows = request.architectures
    if rows is None:
        rows = _from_ofa(space, request.ofa_configs or [])
    if any(len(row) != space.num_layers for row in rows):
        bad = next(i for i, row in enumerate(rows) if len(row) != space.num_layers)
        raise InvalidInput(
            f"architecture {bad} has {len(rows[bad])} entries; {space.name} has "
            f"{space.num_layers} searchable layers"
        )
    try:
        archs = np.asarray(rows, dtype=np.int64).reshape(len(rows), space.num_layers)
    except OverflowError:
        raise InvalidInput(
            f"a candidate index is beyond 64 bits; {space.name} has at most "
            f"{max(space.candidate_counts)} candidates per layer"
        ) from None
    try:
        compiled.check(archs)
    except InvalidArchitecture as error:
        raise InvalidInput(str(error)) from None
    index = compiled.index(archs)
    latency, uncertainty = compiled.predict(archs, index)
    used = compiled.flat_estimated.take(index)
    beside = _beside_latency(session, cache, request, space, rows)
    return PredictOut(
        device_id=request.device_id,
        predictor_version=compiled.version,
        space=space.name,
        latency_ms=latency.tolist(),
        uncertainty_ms=uncertainty.tolist(),
        estimated_layers=_estimated(compiled, _used_entries(compiled, index)),
        estimated_count=used.sum(axis=1).tolist(),
        breakdown_ms=compiled.flat_ms.take(index).tolist() if request.breakdown else None,
        fixed_ms=compiled.fixed_ms if compiled.calibration.fixed_in_sum else None,
        peak_memory_mb=beside.get(DeviceMetric.memory),
        energy_mj=beside.get(DeviceMetric.energy),
    )


def _beside_latency(
    session: Session,
    cache: CompiledCache,
    request: PredictIn,
    space: SearchSpace,
    rows: list[list[int]],
) -> dict[DeviceMetric, list[float]]:
    """The metrics the request asked for beside latency, per architecture."""
    if not request.metrics:
        return {}
    _, artifact = cache.artifact(session, request.device_id)
    networks = [space.network(row) for row in rows]
    owner = f"device {request.device_id}"
    return {
        m: predict_metric(m, artifact, space, networks, owner).tolist() for m in request.metrics
    }


_PREDICTORS = {DeviceMetric.memory: predict_memory_mb, DeviceMetric.energy: predict_energy_mj}


def predict_metric(
    metric: DeviceMetric,
    artifact: PredictorArtifact,
    space: SearchSpace,
    networks: Sequence[Sequence[LayerKey]],
    owner: str,
) -> npt.NDArray[np.float64]:
    """The artifact's ``metric`` (memory: MB; energy: mJ) of each network of ``space``; a metric
    it has no model of is PredictorIncomplete, its message starting with ``owner``."""
    try:
        return _PREDICTORS[metric](artifact, space, networks)
    except (NoMetricModel, CalibratedOnAnotherSpec) as error:
        raise PredictorIncomplete(f"{owner}: {error}") from None


def _used_entries(compiled: CompiledSpace, index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The estimated entries the batch reads, sorted and each once (a mark per table entry:
    no sort of every (row, position) read)."""
    read = np.zeros(len(compiled.flat_ms), dtype=bool)
    read[index.ravel()] = True
    return np.flatnonzero(read & compiled.flat_estimated)


def _estimated(compiled: CompiledSpace, flat: npt.NDArray[np.int64]) -> list[EstimatedLayer]:
    """The estimated entries of the gathered table (``flat``: sorted, distinct indices).

    In a space of fixed shapes each comes with its position (the searchable layer) and
    candidate. In an elastic one each layer key is listed once, without a position: thousands
    of (position, key) pairs would say little more and make the answer several times larger.
    """
    if not compiled.space.fixed_shape:
        keys = {compiled.flat_keys[f]: f for f in flat.tolist()}
        return [
            EstimatedLayer.model_construct(layer_key=str(key), ms=float(compiled.flat_ms[f]))
            for key, f in keys.items()
        ]
    column = np.searchsorted(compiled.offsets, flat, side="right") - 1
    return [
        EstimatedLayer(
            layer_key=str(compiled.flat_keys[f]),
            position=j,
            candidate=f - int(compiled.offsets[j]),
            ms=float(compiled.flat_ms[f]),
        )
        for j, f in zip(column.tolist(), flat.tolist(), strict=True)
    ]


def _from_ofa(space: SearchSpace, configs: list[OfaConfig]) -> list[list[int]]:
    rows = []
    for n, config in enumerate(configs):
        try:
            rows.append(list(from_ofa_config(space, config.model_dump(exclude_none=True))))
        except OfaConfigError as error:
            raise InvalidInput(f"ofa_configs[{n}]: {error}") from None
    return rows


def _by_layers(session: Session, cache: CompiledCache, request: PredictIn) -> PredictOut:
    version, artifact = cache.artifact(session, request.device_id)
    calibration = Calibration()
    if request.space is not None:
        space = space_or_404(request.space)
        calibration = artifact.calibration.get(space.name, Calibration())
        if not calibration.fixed_in_sum:
            raise InvalidInput(
                f"predictor v{version} holds {space.name} as an imported per-position table; "
                "ask with `architectures` instead of `layers`"
            )
    networks = request.layers or []
    keys = []
    for n, network in enumerate(networks):
        for p, text in enumerate(network):
            try:
                keys.append(parse(text))
            except ValueError as error:
                raise InvalidInput(f"layers[{n}][{p}]: {error}") from None
    try:
        found = lookup(artifact, keys)
    except MissingLayers as error:
        raise PredictorIncomplete(f"predictor v{version}: {error}") from None
    lengths = [len(network) for network in networks]
    bounds = np.cumsum([0, *lengths])
    # Which network each key belongs to; bincount sums per network, empty ones included.
    owner = np.repeat(np.arange(len(networks)), lengths)
    # Weighted bincounts are float64 (NumPy's stubs say int): asarray states it, copying nothing.
    sums = np.asarray(np.bincount(owner, weights=found.ms, minlength=len(networks)), np.float64)
    variances = np.asarray(
        np.bincount(owner, weights=found.var, minlength=len(networks)), np.float64
    )
    # The networks' layers are all listed, fixed parts included: nothing to add to the sums.
    latency = calibrated_ms(calibration, sums)
    uncertainty = calibrated_uncertainty_ms(calibration, latency, variances)
    counts = np.bincount(owner, weights=found.estimated, minlength=len(networks))
    estimated = {
        str(keys[i]): EstimatedLayer(layer_key=str(keys[i]), ms=float(found.ms[i]))
        for i in np.flatnonzero(found.estimated)
    }
    breakdown = None
    if request.breakdown:
        breakdown = [found.ms[a:b].tolist() for a, b in itertools.pairwise(bounds)]
    return PredictOut(
        device_id=request.device_id,
        predictor_version=version,
        space=request.space,
        latency_ms=latency.tolist(),
        uncertainty_ms=uncertainty.tolist(),
        estimated_layers=list(estimated.values()),
        estimated_count=counts.astype(int).tolist(),
        breakdown_ms=breakdown,
    )
