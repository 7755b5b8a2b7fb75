"""A smooth correction of the linear cost in shape space: a Gaussian process on log residuals.

A runtime's cost per MAC is not constant: a shape its microkernels tile well runs faster than
its work says, a tensor past a cache runs slower. Those effects vary smoothly with the sizes
(``models.features.SHAPE_FEATURES``, on a log scale), so a GP with one length scale per input
(ARD) fitted to ``log(measured / linear)`` predicts them for shapes near measured ones and fades
to 0 (the linear cost alone) far from them.

Fitted with scikit-learn; stored as plain numbers (the training inputs, the weights ``alpha``
and the kernel's parameters), so that predicting needs NumPy only. Training sets are capped at
``MAX_POINTS`` (a seeded subsample): the fit is cubic in them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_POINTS = 600


@dataclass(frozen=True, slots=True)
class ResidualGP:
    """mean log residual at z = Σ_i alpha_i · c · exp(-½ |(z' - z_i) / l|²), z' normalised
    (l: the length scale of each input)."""

    centre: tuple[float, ...]  # input normalisation: (z - centre) / spread
    spread: tuple[float, ...]
    points: tuple[tuple[float, ...], ...]  # normalised training inputs
    alpha: tuple[float, ...]
    amplitude: float  # c
    length_scales: tuple[float, ...]  # l
    noise: float  # the white-noise variance the fit found (log scale)

    def predict(self, z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if z.shape[0] == 0 or not self.alpha:
            return np.zeros(z.shape[0])
        scaled = (z - np.asarray(self.centre)) / np.asarray(self.spread)
        ell = np.asarray(self.length_scales)
        diff = (scaled[:, None, :] - np.asarray(self.points)[None, :, :]) / ell
        kernel = self.amplitude * np.exp(-0.5 * np.sum(diff**2, axis=2))
        return np.asarray(kernel @ np.asarray(self.alpha))


def fit_residual_gp(
    z: npt.NDArray[np.float64],
    residual: npt.NDArray[np.float64],
    seed: int = 0,
    like: ResidualGP | None = None,
) -> ResidualGP:
    """The GP of ``residual`` over inputs ``z``; with ``like``, its kernel is reused as is
    (no optimisation: what cross-validation folds need, fast and without fitting noise)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    if z.shape[0] > MAX_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(z.shape[0], MAX_POINTS, replace=False))
        z, residual = z[keep], residual[keep]
    centre = z.mean(axis=0) if like is None else np.asarray(like.centre)
    spread = z.std(axis=0) if like is None else np.asarray(like.spread)
    spread = np.where(spread > 1e-9, spread, 1.0)
    scaled = (z - centre) / spread
    if like is None:
        kernel = ConstantKernel(0.01, (1e-5, 1.0)) * RBF(
            np.ones(z.shape[1]), (1e-2, 1e3)
        ) + WhiteKernel(1e-3, (1e-6, 0.1))
        optimizer: str | None = "fmin_l_bfgs_b"
    else:
        kernel = ConstantKernel(like.amplitude, "fixed") * RBF(
            np.asarray(like.length_scales), "fixed"
        ) + WhiteKernel(like.noise, "fixed")
        optimizer = None
    gp = GaussianProcessRegressor(kernel, optimizer=optimizer, random_state=seed)
    with warnings.catch_warnings():
        # A length scale at its bound means that input does not matter: that is an answer.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(scaled, residual)
    fitted = gp.kernel_
    return ResidualGP(
        centre=tuple(float(v) for v in centre),
        spread=tuple(float(v) for v in spread),
        points=tuple(tuple(float(v) for v in row) for row in scaled),
        alpha=tuple(float(v) for v in np.ravel(gp.alpha_)),
        amplitude=float(fitted.k1.k1.constant_value),
        length_scales=tuple(float(v) for v in np.ravel(fitted.k1.k2.length_scale)),
        noise=float(fitted.k2.noise_level),
    )
