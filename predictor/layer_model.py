"""A layer model for any layer key: Bayesian, non-negative, and taught by other devices.

Latency is linear in the operator-split work of a layer (``models.features``), as the kernels
cost it: ``ms = φ(key) · w``. The weights ``w`` of a device are fitted with a Gaussian prior:

- **with no other device**, a weak prior (a mild ridge): the device's own layers decide;
- **with other devices**, a prior over devices. Each known device ``j`` gets its own weights
  ``w_j`` from its layers, and a *similarity* to this device from the layers both measured: the
  spread of ``log(ms_here / (c_j · ms_j))`` after the best speed factor ``c_j``. The prior mean
  is the similarity-weighted mean of ``c_j · w_j``, its spread is how much those disagree. Ten
  layers of a new device then place it among the known ones, and a fully profiled device
  overrides its prior wherever its data speaks.

What no linear model captures, a layer that runs faster or slower than its work says (a shape
the kernels like, a tensor that no longer fits a cache), is often shared across devices: each
known device's log residual at a layer is carried over, weighted by similarity and scaled by a
factor ``rho`` that this device's own layers fit (0: nothing carries over).

Fit with non-negative least squares on relative error (a latency sum is judged in relative
terms) with the prior as extra rows; the posterior covariance of ``w`` (unconstrained Laplace
approximation) gives each estimate's uncertainty and the correlation between estimates, which
``predictor.sampling`` uses to choose what to measure next. The stated interval is calibrated by
cross-validation: the 90% interval is widened or narrowed until it holds 90% of held-out layers
(split-conformal), so "90%" means what it says on this device's data.

Pure NumPy/SciPy; stored in the artifact as plain numbers (``LayerModel`` is a dataclass).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from models.features import FEATURES, feature_matrix, shape_matrix
from models.layer_key import LayerKey, parse
from predictor.residual_gp import ResidualGP, fit_residual_gp

# A device fitted on its own needs this many layers; with other devices' prior, one will do.
MIN_LAYERS_ALONE: int = 8
# The residual GP is tried from this many layers on (cross-validation decides if it stays).
MIN_GP_LAYERS: int = 16
CV_FOLDS: int = 10
# How far a new device's weights may stray from the prior mean (relative), beyond how much the
# known devices disagree: devices are never identical. Cross-validation on the device's own
# layers picks the width (None: the weak prior, other devices ignored), so a device whose
# measurements say it is unlike the known ones is not held to them.
PRIOR_WIDTHS: tuple[float | None, ...] = (0.1, 0.3, 1.0, None)
DEFAULT_PRIOR_WIDTH: float = 0.3
# How far a weak prior lets weights go, relative to the largest latency (a mild ridge).
WEAK_PRIOR_REL: float = 10.0
# The noise floor of a relative residual: below it a layer's own measurement spread dominates.
MIN_NOISE_REL: float = 0.01
INTERVAL: float = 0.9
MAX_LOG_SD: float = 3.0
Z90: float = 1.6448536269514722  # the normal 95th percentile: a two-sided 90% interval


@dataclass(frozen=True, slots=True)
class Similarity:
    """What another device contributed to this one's prior."""

    device: str
    weight: float  # share of the prior, summing to 1 over the devices used
    speed_ratio: float  # c: this device's latency over that device's, on the shared layers
    spread_pct: float  # how far the shared layers stray from c (robust RMS of the log ratio)
    shared_layers: int


@dataclass(frozen=True, slots=True)
class LayerModel:
    features: tuple[str, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]  # posterior mode of w (non-negative), for features / scale
    # Posterior covariance of coef, row-major F x F; () when not computed.
    coef_cov: tuple[float, ...]
    noise_rel: float  # one layer's relative residual the weights do not explain (sd)
    interval_scale: float  # z multiplier making the 90% interval hold 90% in CV
    # Residuals carried over from other devices: key -> similarity-weighted log residual.
    transferred: dict[str, float] = field(default_factory=dict)
    rho: float = 0.0
    similarity: tuple[Similarity, ...] = ()
    # Relative width of the prior over devices that cross-validation chose (None: the weak
    # prior, the device's own layers alone).
    prior_width: float | None = None
    # The shape-space correction of what the linear cost misses (None: it did not predict
    # held-out layers better, or too few layers to fit it).
    residual: ResidualGP | None = None
    n_train: int = 0
    cv_mape_pct: float | None = None
    cv_worst_decile_pct: float | None = None  # mean of the worst 10% of held-out errors
    cv_coverage90_pct: float | None = None  # share of held-out layers inside their interval

    # -- predicting -----------------------------------------------------------------------

    def _columns(self) -> list[int]:
        unknown = [name for name in self.features if name not in FEATURES]
        if unknown:
            raise ValueError(
                f"this layer model was fitted on features this version does not compute "
                f"({', '.join(unknown)}); refit the predictor"
            )
        return [FEATURES.index(name) for name in self.features]

    def design(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        """The scaled features of ``keys``: what the weights multiply."""
        x = feature_matrix(list(keys))[:, self._columns()] / np.asarray(self.scale)
        return np.asarray(x, dtype=np.float64)

    def linear_ms(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        return np.asarray(np.maximum(self.design(keys) @ np.asarray(self.coef), 1e-6))

    def carried(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        """The factor other devices' residuals put on each layer (1 where none measured it)."""
        logs = np.array([self.transferred.get(str(k), 0.0) for k in keys])
        return np.asarray(np.exp(self.rho * logs))

    def corrected(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        """The residual GP's factor on each layer (1 without one)."""
        if self.residual is None:
            return np.ones(len(keys))
        return np.asarray(np.exp(self.residual.predict(shape_matrix(list(keys)))))

    def predict(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        return self.linear_ms(keys) * self.carried(keys) * self.corrected(keys)

    def log_sd(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        """One standard deviation of log(latency) of each estimate: the weights' uncertainty
        (relative to the estimate) and the residual noise, in quadrature."""
        linear = self.linear_ms(keys)
        relative = np.zeros(len(keys))
        if self.coef_cov:
            x = self.design(keys)
            cov = self.covariance()
            relative = np.einsum("if,fg,ig->i", x, cov, x) / linear**2
        # A layer far outside the data (its linear cost near 0, the weights' spread not) gets
        # an sd of log-latency capped at MAX_LOG_SD: an interval wider than x150 says "not
        # known" as well as an infinite one, and sums of variances stay finite.
        return np.asarray(np.minimum(np.sqrt(relative + self.noise_rel**2), MAX_LOG_SD))

    def variance_ms2(self, keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
        """Variance (ms², calibrated) of each estimate, for sums over layers."""
        sd = self.interval_scale / Z90 * self.log_sd(keys) * self.predict(keys)
        return np.asarray(sd**2)

    def interval(
        self, keys: Sequence[LayerKey]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The calibrated 90% interval (low, high) of each estimate, in ms."""
        ms = self.predict(keys)
        half = self.interval_scale * self.log_sd(keys)
        return ms * np.exp(-half), ms * np.exp(half)

    def covariance(self) -> npt.NDArray[np.float64]:
        n = len(self.coef)
        return np.asarray(self.coef_cov, dtype=np.float64).reshape(n, n)


# -- fitting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Weights:
    coef: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Prior:
    mean: npt.NDArray[np.float64]
    sd: npt.NDArray[np.float64]
    transferred: dict[str, float]
    similarity: tuple[Similarity, ...]


def _solve(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    prior_mean: npt.NDArray[np.float64],
    prior_sd: npt.NDArray[np.float64],
    noise_rel: float,
) -> _Weights:
    """MAP of w >= 0 under y ~ N(x·w, (noise·y)²), w ~ N(mean, sd²); Laplace covariance."""
    from scipy.optimize import nnls

    rows = x / (noise_rel * y)[:, None]
    design = np.vstack([rows, np.diag(1.0 / prior_sd)])
    target = np.concatenate([np.full(y.size, 1.0 / noise_rel), prior_mean / prior_sd])
    coef, _ = nnls(design, target, maxiter=50 * design.shape[1])
    precision = rows.T @ rows + np.diag(1.0 / prior_sd**2)
    return _Weights(coef, np.asarray(np.linalg.inv(precision), dtype=np.float64))


def _log_residuals(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], coef: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    return np.asarray(np.log(y / np.maximum(x @ coef, 1e-6)))


def _robust_rms(values: npt.NDArray[np.float64]) -> float:
    """RMS that a few outliers do not own: 1.4826·MAD around the median, combined with the
    median's own offset."""
    if values.size == 0:
        return math.inf
    centre = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - centre)))
    return math.hypot(mad, centre)


def _feature_scale(keys: Sequence[LayerKey]) -> npt.NDArray[np.float64]:
    """Each feature's largest value over ``keys`` (1 where it is 0 or there are none): the
    weights are fitted on features scaled to [0, 1]."""
    if not keys:
        return np.ones(len(FEATURES))
    top = feature_matrix(list(keys)).max(axis=0)
    return np.asarray(np.where(top > 0, top, 1.0), dtype=np.float64)


def _weak_prior(n_features: int, y: npt.NDArray[np.float64]) -> tuple[Any, Any]:
    return np.zeros(n_features), np.full(n_features, WEAK_PRIOR_REL * float(y.max()))


def _device_prior(
    own: Mapping[str, float],
    others: Mapping[str, Mapping[str, float]],
    scale: npt.NDArray[np.float64],
) -> _Prior | None:
    """Each known device fitted alone, then weighted by how well it matches this one on the
    layers both measured (or, sharing none, on its estimates of this device's layers)."""
    fitted: dict[str, tuple[npt.NDArray[np.float64], dict[str, float]]] = {}
    for device, layers in others.items():
        if len(layers) < MIN_LAYERS_ALONE:
            continue
        keys = [parse(k) for k in layers]
        x = feature_matrix(keys) / scale
        y = np.asarray(list(layers.values()), dtype=np.float64)
        weights = _fit_alone(x, y)
        residuals = _log_residuals(x, y, weights.coef)
        fitted[device] = (weights.coef, dict(zip(layers, residuals.tolist(), strict=True)))
    if not fitted:
        return None
    own_keys = list(own)
    own_y = np.asarray(list(own.values()), dtype=np.float64)
    own_x = feature_matrix([parse(k) for k in own_keys]) / scale if own else None
    stats: list[tuple[str, float, float, int]] = []
    for device, (coef, _) in fitted.items():
        theirs = others[device]
        shared = [k for k in own_keys if k in theirs]
        if len(shared) >= 2:
            ratio = np.log(np.asarray([own[k] / theirs[k] for k in shared]))
        elif own_x is not None and own_y.size:
            ratio = np.log(own_y / np.maximum(own_x @ coef, 1e-6))
        else:
            ratio = np.zeros(1)
        log_c = float(np.median(ratio))
        spread = max(_robust_rms(ratio - log_c), MIN_NOISE_REL)
        stats.append((device, log_c, spread, len(shared)))
    # Weight 1/spread²: a device that tracks this one within 2% counts 25 times one within
    # 10%. With a single shared layer (or none) every spread is the floor: equal weights.
    raw = np.asarray([1.0 / s**2 for _, _, s, _ in stats])
    weights = raw / raw.sum()
    scaled = np.stack([math.exp(c) * fitted[d][0] for d, c, _, _ in stats])
    mean = weights @ scaled
    between = np.sqrt(weights @ (scaled - mean) ** 2)
    sd = np.maximum(between, 1e-3 * float(mean.max() or 1.0))
    transferred: dict[str, float] = {}
    totals: dict[str, float] = {}
    for (device, _, _, _), w in zip(stats, weights, strict=True):
        for key, r in fitted[device][1].items():
            transferred[key] = transferred.get(key, 0.0) + w * r
            totals[key] = totals.get(key, 0.0) + w
    similarity = tuple(
        Similarity(d, float(w), math.exp(c), 100 * s, n)
        for (d, c, s, n), w in zip(stats, weights, strict=True)
    )
    return _Prior(
        mean,
        sd,
        {k: v / totals[k] for k, v in transferred.items()},
        tuple(sorted(similarity, key=lambda s: -s.weight)),
    )


def _fit_alone(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> _Weights:
    mean, sd = _weak_prior(x.shape[1], y)
    first = _solve(x, y, mean, sd, 0.05)
    noise = max(_robust_rms(_log_residuals(x, y, first.coef)), MIN_NOISE_REL)
    return _solve(x, y, mean, sd, noise)


def _fit_rho(residual: npt.NDArray[np.float64], carried: npt.NDArray[np.float64]) -> float:
    """Least squares of this device's log residuals on the carried ones, shrunk toward 0 by a
    pseudo-observation so that a handful of layers cannot claim a large factor."""
    denominator = float(carried @ carried) + 0.05**2 * 4
    return float(np.clip((residual @ carried) / denominator, 0.0, 1.5))


@dataclass(frozen=True)
class _Fit:
    coef: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]
    rho: float
    noise_rel: float


def _fit_device(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    carried: npt.NDArray[np.float64],
    prior: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> _Fit:
    """Weights and rho by alternating: weights on the latencies with the carried residuals
    divided out, then rho on what the weights leave."""
    rho, noise = 0.0, 0.05
    for _ in range(3):
        weights = _solve(x, y * np.exp(-rho * carried), prior[0], prior[1], noise)
        residual = _log_residuals(x, y, weights.coef)
        rho = _fit_rho(residual, carried) if carried.any() else 0.0
        noise = max(_robust_rms(residual - rho * carried), MIN_NOISE_REL)
    return _Fit(weights.coef, weights.cov, rho, noise)


def can_fit(
    layers: Mapping[str, float], others: Mapping[str, Mapping[str, float]] | None = None
) -> bool:
    """Whether :func:`fit_layer_model` has enough to go on: MIN_LAYERS_ALONE layers of this
    device, or another device with that many (the only ones a prior is built from)."""
    return len(layers) >= MIN_LAYERS_ALONE or any(
        len(theirs) >= MIN_LAYERS_ALONE for theirs in (others or {}).values()
    )


def fit_layer_model(
    layers: Mapping[str, float],
    others: Mapping[str, Mapping[str, float]] | None = None,
    seed: int = 0,
) -> LayerModel:
    """The layer model of a device from its measured layers (key -> median ms) and, if given,
    what other devices measured (device name -> key -> ms)."""
    others = dict(others or {})
    if not can_fit(layers, others):
        raise ValueError(
            f"a layer model needs at least {MIN_LAYERS_ALONE} measured layers on this device, "
            f"or another device with that many to lend a prior; got {len(layers)} here"
        )
    all_keys = set(layers).union(*(set(v) for v in others.values()))
    scale = _feature_scale([parse(k) for k in sorted(all_keys)])
    prior = _device_prior(layers, others, scale)
    keys = list(layers)
    x = feature_matrix([parse(k) for k in keys]) / scale
    y = np.asarray([layers[k] for k in keys], dtype=np.float64)
    transferred = prior.transferred if prior else {}
    carried = np.asarray([transferred.get(k, 0.0) for k in keys])

    def prior_of(width: float | None) -> Any:
        def prior_for(y_fit: npt.NDArray[np.float64]) -> tuple[Any, Any]:
            if prior is None or width is None:
                return _weak_prior(x.shape[1], y_fit)
            return prior.mean, np.sqrt(prior.sd**2 + (width * prior.mean) ** 2 + 1e-12)

        return prior_for

    width: float | None = DEFAULT_PRIOR_WIDTH if prior else None
    if prior is not None and len(keys) >= 3:
        # The prior's width, and whether other devices' residuals carry over at all, are what
        # this device's held-out layers say predicts them best.
        widths = [w for w in PRIOR_WIDTHS if w is not None or len(keys) >= MIN_LAYERS_ALONE]
        options = [(w, c) for w in widths for c in (True, False)]
        held = {
            (w, c): _cross_validate(
                x, y, None, carried if c else np.zeros_like(carried), prior_of(w), None, seed
            ).linear.mape
            for w, c in options
        }
        width, carry = min(options, key=lambda option: held[option])
        if not carry:
            transferred, carried = {}, np.zeros_like(carried)
    prior_for = prior_of(width)

    model = LayerModel(
        features=FEATURES,
        scale=tuple(float(s) for s in scale),
        coef=(),
        coef_cov=(),
        noise_rel=0.1,
        interval_scale=Z90,
        transferred=dict(sorted(transferred.items())),
        rho=1.0,
        similarity=prior.similarity if prior else (),
        prior_width=width,
        n_train=len(keys),
    )
    if not keys and prior is not None:  # no layers here: the prior alone
        return replace(
            model,
            coef=tuple(float(c) for c in prior.mean),
            coef_cov=tuple(float(v) for v in np.diag(prior_for(np.ones(1))[1] ** 2).ravel()),
        )
    fitted = _fit_device(x, y, carried, prior_for(y))
    z = shape_matrix([parse(k) for k in keys])
    gp = None
    if len(keys) >= MIN_GP_LAYERS:
        gp = fit_residual_gp(z, _log_residuals(x, y, fitted.coef) - fitted.rho * carried, seed)
    model = replace(
        model,
        coef=tuple(float(c) for c in fitted.coef),
        coef_cov=tuple(float(v) for v in fitted.cov.ravel()),
        noise_rel=fitted.noise_rel,
        rho=fitted.rho,
    )
    if len(keys) < 3:
        return model
    cv = _cross_validate(x, y, z, carried, prior_for, gp, seed)
    use_gp = gp is not None and cv.with_gp is not None and cv.with_gp.mape < cv.linear.mape
    chosen = cv.with_gp if use_gp and cv.with_gp is not None else cv.linear
    fitted_model = replace(
        model,
        residual=gp if use_gp else None,
        noise_rel=chosen.noise_rel,
        interval_scale=chosen.interval_scale,
        cv_mape_pct=100 * chosen.mape,
        cv_worst_decile_pct=100 * chosen.worst_decile,
        cv_coverage90_pct=100 * chosen.coverage,
    )
    if prior is None or len(keys) < MIN_LAYERS_ALONE:
        return fitted_model
    # With layers enough to stand alone, the device is also fitted without the others; the
    # model whose held-out layers came out better is kept (the similarities stay on record).
    alone = fit_layer_model(layers, None, seed)
    if alone.cv_mape_pct is not None and alone.cv_mape_pct < 100 * chosen.mape:
        return replace(alone, similarity=prior.similarity)
    return fitted_model


@dataclass(frozen=True)
class _Held:
    """Held-out layers' errors under one variant of the model, and the interval they imply."""

    mape: float
    worst_decile: float
    noise_rel: float
    interval_scale: float
    coverage: float

    @classmethod
    def of(
        cls, log_errors: npt.NDArray[np.float64], relative_var: npt.NDArray[np.float64]
    ) -> _Held:
        errors = np.sort(np.abs(np.expm1(-log_errors)))
        worst = errors[-max(1, errors.size // 10) :]
        # The noise a held-out layer shows beyond the weights' own uncertainty.
        noise = math.sqrt(max(float(np.mean(log_errors**2 - relative_var)), MIN_NOISE_REL**2))
        standardized = np.abs(log_errors) / np.sqrt(relative_var + noise**2)
        scale = float(np.quantile(standardized, INTERVAL))
        return cls(
            mape=float(errors.mean()),
            worst_decile=float(worst.mean()),
            noise_rel=noise,
            interval_scale=scale,
            coverage=float(np.mean(standardized <= scale)),
        )


@dataclass(frozen=True)
class _CrossValidation:
    linear: _Held
    with_gp: _Held | None


def _cross_validate(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64] | None,
    carried: npt.NDArray[np.float64],
    prior_for: Any,
    gp: ResidualGP | None,
    seed: int,
) -> _CrossValidation:
    """Each fold refitted without its layers and asked for them: log errors (measured over
    predicted) with and without the residual GP (its kernel fixed to the full fit's)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(y.size)
    folds = np.array_split(order, min(CV_FOLDS, y.size))
    log_linear = np.empty(y.size)
    log_gp = np.empty(y.size)
    relative_var = np.empty(y.size)
    for test in folds:
        train = np.setdiff1d(order, test)
        fit = _fit_device(x[train], y[train], carried[train], prior_for(y[train]))
        cost = np.maximum(x[test] @ fit.coef, 1e-6)
        linear = cost * np.exp(fit.rho * carried[test])
        relative_var[test] = np.einsum("if,fg,ig->i", x[test], fit.cov, x[test]) / cost**2
        log_linear[test] = np.log(y[test] / linear)
        if gp is not None and z is not None:
            residual = _log_residuals(x[train], y[train], fit.coef) - fit.rho * carried[train]
            fold_gp = fit_residual_gp(z[train], residual, seed, like=gp)
            log_gp[test] = log_linear[test] - fold_gp.predict(z[test])
    return _CrossValidation(
        linear=_Held.of(log_linear, relative_var),
        with_gp=_Held.of(log_gp, relative_var) if gp is not None else None,
    )


def uninformed_model(keys: Sequence[LayerKey]) -> LayerModel:
    """A model for choosing a device's first measurements when no latency is known anywhere:
    every scaled feature costs the same, and is as uncertain as any other. Choices made with it
    favour layers that are frequent and unlike each other in their work."""
    n = len(FEATURES)
    return LayerModel(
        features=FEATURES,
        scale=tuple(float(s) for s in _feature_scale(list(keys))),
        coef=(1.0,) * n,
        coef_cov=tuple(float(v) for v in np.eye(n).ravel()),
        noise_rel=0.3,
        interval_scale=Z90,
    )
