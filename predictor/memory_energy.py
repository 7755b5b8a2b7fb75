"""The metrics beside latency (peak memory, energy per inference): fitting, predicting a
space's networks, and the baselines they are judged against.

Pure: numbers in, numbers out. The models themselves are plain data in
:mod:`predictor.artifact` (``MemoryModel``, ``EnergyModel``), where their docs say how each
aggregates over a network's layers: energy sums, peak memory does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import nnls
from sklearn.model_selection import KFold

from models import LayerKey, SearchSpace, parse
from models.features import FEATURES, feature_matrix
from models.units import BYTES_PER_MB
from predictor.artifact import (
    Calibration,
    EnergyModel,
    MemoryModel,
    NoMetricModel,
    PredictorArtifact,
    Regression,
    live_bytes,
    weight_bytes,
)
from predictor.compiled import CalibratedOnAnotherSpec
from predictor.fitting import fit_calibration

# Fewer measured layers than this fit no memory model: three coefficients need some spread.
MIN_MEMORY_LAYERS = 3
# Fewer than this fit no energy regression (the measured table still answers what it holds).
MIN_ENERGY_LAYERS = 8
CV_FOLDS = 5

# (architecture, measured value) of one network of a space.
NetworkValues = Mapping[SearchSpace, Sequence[tuple[tuple[int, ...], float]]]


def _relative_nnls(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Non-negative coefficients minimising Σ ((x·c - y) / y)²: small and large layers count
    alike, as their relative errors are what a prediction is judged by."""
    coef, _ = nnls(x / y[:, None], np.ones_like(y))
    return np.asarray(coef, dtype=np.float64)


def fit_memory(layers: Mapping[str, float], networks: NetworkValues) -> MemoryModel | None:
    """A memory model from layers measured alone (key -> peak bytes), calibrated on measured
    networks per space; None with fewer than MIN_MEMORY_LAYERS layers."""
    if len(layers) < MIN_MEMORY_LAYERS:
        return None
    keys = [parse(k) for k in layers]
    y = np.array(list(layers.values()), dtype=np.float64)
    x = np.stack([np.ones_like(y), weight_bytes(keys), live_bytes(keys)], axis=1)
    scale = np.maximum(x.max(axis=0), 1.0)
    coef = _relative_nnls(x / scale, y) / scale
    fitted = x @ coef
    model = MemoryModel(
        fixed_bytes=float(coef[0]),
        per_weight_byte=float(coef[1]),
        per_live_byte=float(coef[2]),
        n_layers=len(keys),
        fit_mape_pct=float(100 * np.mean(np.abs(fitted - y) / y)),
    )
    return replace(model, calibration=_per_space(networks, model.formula_bytes))


def fit_energy(
    layers: Mapping[str, float], networks: NetworkValues, seed: int = 0
) -> EnergyModel | None:
    """An energy model from layers measured alone (key -> mJ per inference): their table,
    a regression for the rest, a calibration per space; None with no layer at all."""
    if not layers:
        return None
    regression = _energy_regression(layers, seed) if len(layers) >= MIN_ENERGY_LAYERS else None
    model = EnergyModel(layers_mj=dict(layers), regression=regression)
    return replace(model, calibration=_per_space(networks, model.network_mj))


def _per_space(
    networks: NetworkValues,
    uncalibrated: Callable[[Sequence[Sequence[LayerKey]]], npt.NDArray[np.float64]],
) -> dict[str, Calibration]:
    """A calibration ``a · x + b`` per space from the model's uncalibrated value of its measured
    networks, as latency's (predictor.fitting.fit_calibration, kept only if it helps)."""
    calibration = {}
    for space, samples in networks.items():
        if not samples:
            continue
        raw = uncalibrated([space.network(arch) for arch, _ in samples])
        fitted_line = fit_calibration(raw, [value for _, value in samples])
        calibration[space.name] = replace(fitted_line, space_sha256=space.digest)
    return calibration


def _energy_regression(layers: Mapping[str, float], seed: int) -> Regression:
    keys = [parse(k) for k in layers]
    y = np.array(list(layers.values()), dtype=np.float64)
    x = feature_matrix(keys)
    scale = np.maximum(np.abs(x).max(axis=0), 1.0)
    xs = x / scale
    relative = []
    folds = KFold(n_splits=min(CV_FOLDS, len(y)), shuffle=True, random_state=seed)
    for train, test in folds.split(xs):
        coef = _relative_nnls(xs[train], y[train])
        predicted = np.maximum(xs[test] @ coef, 1e-9)
        relative.extend(((predicted - y[test]) / y[test]).tolist())
    errors = np.asarray(relative)
    coef = _relative_nnls(xs, y)
    return Regression(
        features=FEATURES,
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in coef),
        intercept=0.0,
        n_train=len(y),
        cv_mape_pct=float(100 * np.mean(np.abs(errors))),
        cv_rms_rel=float(np.sqrt(np.mean(errors**2))),
    )


def arithmetic_memory_bytes(networks: Sequence[Sequence[LayerKey]]) -> npt.NDArray[np.float64]:
    """The memory baseline a user would write down: parameters + the largest layer's
    activations, fp32, with nothing for the runtime."""
    return np.array(
        [float(weight_bytes(keys).sum() + live_bytes(keys).max(initial=0.0)) for keys in networks]
    )


def _calibration_for(
    calibrations: dict[str, Calibration], space: SearchSpace
) -> Calibration | None:
    """The space's calibration, None when its networks were never measured for the metric; a
    calibration fitted on another spec of the space is refused, as latency's is."""
    calibration = calibrations.get(space.name)
    if calibration is None:
        return None
    if calibration.space_sha256 not in (None, space.digest):
        raise CalibratedOnAnotherSpec(space.name, str(calibration.space_sha256), space.digest)
    return calibration


def predict_memory_mb(
    artifact: PredictorArtifact, space: SearchSpace, networks: Sequence[Sequence[LayerKey]]
) -> npt.NDArray[np.float64]:
    """Peak memory of each network of ``space`` (its layer keys, stem to classifier), MB."""
    if artifact.memory is None:
        raise NoMetricModel.never_measured("memory", "peak memory of an inference")
    calibration = _calibration_for(artifact.memory.calibration, space)
    return artifact.memory.network_bytes(networks, calibration) / BYTES_PER_MB


def predict_energy_mj(
    artifact: PredictorArtifact, space: SearchSpace, networks: Sequence[Sequence[LayerKey]]
) -> npt.NDArray[np.float64]:
    """Energy per inference of each network of ``space``, millijoules."""
    if artifact.energy is None:
        raise NoMetricModel.never_measured("energy", "energy per inference")
    calibration = _calibration_for(artifact.energy.calibration, space)
    return artifact.energy.network_mj(networks, calibration)
