"""Fitting a predictor from measurements (pure: numbers in, an artifact out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from models.features import FEATURES, feature_matrix
from models.layer_key import LayerKey, parse
from models.search_space import SearchSpace

if TYPE_CHECKING:
    from sklearn.linear_model import LinearRegression

# scikit-learn is imported where a fit runs: it takes most of a second to import, and every
# service worker (and every process that only predicts) would pay for it at start.
from predictor.artifact import (
    Calibration,
    LayerEntry,
    PredictorArtifact,
    Regression,
)

MIN_REGRESSION_SAMPLES = 8
CV_FOLDS = 5


@dataclass(frozen=True, slots=True)
class NetworkSample:
    architecture: tuple[int, ...]
    median_ms: float


def fit_regression(keys: Sequence[LayerKey], ms: Sequence[float], seed: int = 0) -> Regression:
    """Non-negative linear model on operator-split features, weighted for relative error.

    Relative error is what matters for a sum over layers of very different sizes, so each
    sample is weighted by 1/y^2 (least squares on the relative residual).
    """
    if len(keys) < MIN_REGRESSION_SAMPLES:
        raise ValueError(
            f"a regression needs at least {MIN_REGRESSION_SAMPLES} measured layers, got {len(keys)}"
        )
    x_raw = feature_matrix(list(keys))
    y = np.asarray(ms, dtype=np.float64)
    scale = np.where(x_raw.max(axis=0) > 0, x_raw.max(axis=0), 1.0)
    x = x_raw / scale
    predictions = np.empty_like(y)
    from sklearn.model_selection import KFold

    folds = KFold(n_splits=min(CV_FOLDS, len(y)), shuffle=True, random_state=seed)
    for train, test in folds.split(x):
        predictions[test] = _fit_linear(x[train], y[train]).predict(x[test])
    # An operation seen once or twice (the stem, the head) cannot be cross-validated: its
    # only sample is its own test set. The error is reported over the others, which are
    # the searchable layers a regression is there to estimate.
    ops = [k.op for k in keys]
    counted = np.array([ops.count(op) >= CV_FOLDS for op in ops])
    relative = ((np.maximum(predictions, 1e-6) - y) / y)[counted if counted.any() else slice(None)]
    model = _fit_linear(x, y)
    return Regression(
        features=FEATURES,
        scale=tuple(float(s) for s in scale),
        coef=tuple(float(c) for c in model.coef_),
        intercept=float(model.intercept_),
        n_train=int(y.size),
        cv_mape_pct=float(100 * np.mean(np.abs(relative))),
        cv_rms_rel=float(np.sqrt(np.mean(relative**2))),
    )


def _fit_linear(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> LinearRegression:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression(positive=True)
    model.fit(x, y, sample_weight=1.0 / y**2)
    return model


HUBER_K = 1.345  # the usual tuning: 95% efficiency on Gaussian noise
IRLS_STEPS = 30


def _robust_line(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[float, float]:
    """measured = a * sum + b, least relative error, Huber-weighted (IRLS).

    A few networks measured while something else loaded the machine would drag a plain
    least-squares line; Huber weights shrink their pull. Fewer than three networks fit the
    scale only.
    """
    if x.size < 3:
        return float(np.sum(x / y) / np.sum((x / y) ** 2)), 0.0
    robust = np.ones_like(x)
    a, b = 1.0, 0.0
    for _ in range(IRLS_STEPS):
        w = np.sqrt(robust) / y
        design = np.stack([x * w, w], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, y * w, rcond=None)
        relative = (a * x + b - y) / y
        scale = 1.4826 * float(np.median(np.abs(relative - np.median(relative))))
        if scale <= 1e-12:
            break
        robust = np.minimum(1.0, HUBER_K / np.maximum(np.abs(relative) / scale, 1e-12))
    return float(a), float(b)


def fit_calibration(
    sums_ms: Sequence[float] | npt.NDArray[np.float64], measured_ms: Sequence[float]
) -> Calibration:
    """A robust line from layer sums to measured networks, kept only if it predicts better.

    Each network is predicted by a line fitted on the others (leave one out); if that does
    worse than the plain sum, the calibration is rejected and a = 1, b = 0 are used.
    """
    x = np.asarray(sums_ms, dtype=np.float64)
    y = np.asarray(measured_ms, dtype=np.float64)
    if x.size == 0:
        return Calibration()
    a, b = _robust_line(x, y)
    residual = (a * x + b - y) / y
    uncalibrated = float(100 * np.mean(np.abs(x - y) / y))
    loo = None
    if x.size >= 2:
        errors = []
        for i in range(x.size):
            keep = np.arange(x.size) != i
            ai, bi = _robust_line(x[keep], y[keep])
            errors.append(abs(ai * x[i] + bi - y[i]) / y[i])
        loo = float(100 * np.mean(errors))
    rejected = loo is not None and loo >= uncalibrated
    return Calibration(
        a=1.0 if rejected else a,
        b=0.0 if rejected else b,
        fixed_in_sum=True,
        n_networks=int(x.size),
        residual_rms_rel=float(np.sqrt(np.mean(((x - y) / y if rejected else residual) ** 2))),
        loo_mape_pct=loo,
        uncalibrated_mape_pct=uncalibrated,
        rejected=rejected,
    )


def fit_predictor(
    layers: Mapping[str, LayerEntry],
    networks: Mapping[SearchSpace, Sequence[NetworkSample]],
    seed: int = 0,
) -> PredictorArtifact:
    """A table of the measured layers, a regression for the rest, a calibration per space."""
    keys = [parse(k) for k in layers]
    ms = [entry.ms for entry in layers.values()]
    regression = fit_regression(keys, ms, seed) if len(keys) >= MIN_REGRESSION_SAMPLES else None
    artifact = PredictorArtifact(layers=dict(layers), regression=regression)
    calibration: dict[str, Calibration] = {}
    from predictor.compiled import compile_space  # avoids an import cycle

    for space, samples in networks.items():
        compiled = compile_space(artifact, space, version=0)
        archs = np.asarray([s.architecture for s in samples], dtype=np.int64).reshape(
            len(samples), space.num_layers
        )
        sums = compiled.layer_sums(archs) if len(samples) else np.zeros(0)
        fitted = fit_calibration(sums, [s.median_ms for s in samples])
        calibration[space.name] = replace(fitted, space_sha256=space.digest)
    return PredictorArtifact(
        layers=artifact.layers,
        positions=artifact.positions,
        regression=regression,
        calibration=calibration,
    )
