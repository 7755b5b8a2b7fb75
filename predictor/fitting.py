"""Fitting a predictor from measurements (pure: numbers in, an artifact out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from models.search_space import SearchSpace
from predictor.artifact import (
    Calibration,
    LayerEntry,
    PredictorArtifact,
)
from predictor.layer_model import can_fit, fit_layer_model


@dataclass(frozen=True, slots=True)
class NetworkSample:
    architecture: tuple[int, ...]
    median_ms: float


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
    others: Mapping[str, Mapping[str, float]] | None = None,
) -> PredictorArtifact:
    """A table of the measured layers, a layer model for the rest, a calibration per space.

    ``others`` is what other devices measured (device -> layer key -> ms): the layer model's
    prior over devices. With too little here and there (``can_fit``), only the table is kept.
    """
    own = {k: entry.ms for k, entry in layers.items()}
    layer_model = fit_layer_model(own, others, seed) if can_fit(own, others) else None
    return calibrate(PredictorArtifact(layers=dict(layers), layer_model=layer_model), networks)


def calibrate(
    artifact: PredictorArtifact, networks: Mapping[SearchSpace, Sequence[NetworkSample]]
) -> PredictorArtifact:
    """``artifact`` with a calibration per space fitted on its measured networks."""
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
    return replace(artifact, calibration=calibration)
