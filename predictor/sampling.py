"""What to measure next: the layers whose measurement most reduces the error of network sums.

A network's predicted latency is the sum of its layers: measured ones from the table, the rest
from the layer model. Its variance has two parts:

- the weights' uncertainty, shared by every estimated layer: ``Φ_a' Σ Φ_a`` with ``Φ_a`` the
  summed features of network ``a``'s estimated layers and ``Σ`` the weights' posterior
  covariance (errors of estimates are correlated, and a sum does not average them away);
- each estimated layer's own residual, ``(ŷ_k · noise)²``, independent across layers.

Measuring layer ``k`` removes it from every network that holds it and updates ``Σ`` by one
Bayesian observation (a rank-one downdate). The choice is greedy on the reduction of the sum of
the networks' *relative* variances over a sample of the space's architectures (a V-optimal
design), which favours layers that are frequent, uncertain and unlike those measured: one that
only a rare network holds, or that the measured ones already pin down, gains little.

Calibration networks are spread over the predicted latency range (evenly spaced quantiles), so
that the line ``a·Σ + b`` is fitted across it rather than at one point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.layer_key import LayerKey, Op, parse
from predictor.layer_model import Z90, LayerModel


@dataclass(frozen=True, slots=True)
class Pick:
    layer_key: str
    gain: float  # reduction of the sum of networks' relative variances when it was picked
    networks_holding: int  # how many of the sampled networks hold it


@dataclass(frozen=True, slots=True)
class NetworkError:
    """The model's own estimate of its error on networks of a space."""

    expected_mape_pct: float  # sqrt(2/pi) x relative sd, averaged over the networks
    median_sd_pct: float
    estimated_layer_share_pct: float


class _Networks:
    """The sampled networks' estimated layers, as the matrices the greedy steps update."""

    def __init__(
        self,
        model: LayerModel,
        networks: Sequence[Sequence[LayerKey]],
        measured: Mapping[str, float],
    ) -> None:
        in_networks = {str(k) for net in networks for k in net if k.op is not Op.SKIP}
        keys = sorted(in_networks - set(measured))
        self.keys = keys
        index = {k: i for i, k in enumerate(keys)}
        self.counts = np.zeros((len(networks), len(keys)))
        for a, net in enumerate(networks):
            for k in net:
                i = index.get(str(k))
                if i is not None:
                    self.counts[a, i] += 1
        parsed = [parse(k) for k in keys]
        self.x = model.design(parsed) if keys else np.zeros((0, len(model.coef)))
        self.ms = model.predict(parsed) if keys else np.zeros(0)
        # Measured layers count with their latency but no variance.
        known = [sum(measured.get(str(k), 0.0) for k in net) for net in networks]
        self.total_ms = self.counts @ self.ms + np.asarray(known)
        scale = model.interval_scale / Z90  # the CV-calibrated widening of every sd
        self.layer_var = (self.ms * model.noise_rel * scale) ** 2
        self.cov = model.covariance() * scale**2

    def relative_variance(self) -> npt.NDArray[np.float64]:
        phi = self.counts @ self.x
        shared = np.einsum("af,fg,ag->a", phi, self.cov, phi)
        own = self.counts @ self.layer_var
        return np.asarray((shared + own) / self.total_ms**2)


def choose_layers(
    model: LayerModel,
    networks: Sequence[Sequence[LayerKey]],
    measured: Mapping[str, float],
    budget: int,
) -> list[Pick]:
    """Up to ``budget`` layers, greedily, that most reduce the networks' relative variance."""
    state = _Networks(model, networks, measured)
    if not state.keys or budget <= 0:
        return []
    weights = 1.0 / state.total_ms**2
    phi = state.counts @ state.x  # (M, F) summed features of estimated layers
    cov = state.cov.copy()
    counts = state.counts.copy()
    alive = np.ones(len(state.keys), dtype=bool)
    picks: list[Pick] = []
    for _ in range(min(budget, len(state.keys))):
        u = state.x @ cov  # (C, F)
        q = np.einsum("cf,cf->c", u, state.x)
        d = state.layer_var + q
        g = phi @ u.T  # (M, C)
        n = counts
        gain_matrix = 2 * n * g - n**2 * q + (g - n * q) ** 2 / d + n * state.layer_var
        gain = weights @ gain_matrix
        gain[~alive] = -math.inf
        best = int(np.argmax(gain))
        if not math.isfinite(gain[best]):
            break
        picks.append(Pick(state.keys[best], float(gain[best]), int(np.count_nonzero(n[:, best]))))
        alive[best] = False
        cov -= np.outer(u[best], u[best]) / d[best]
        phi -= np.outer(counts[:, best], state.x[best])
        counts[:, best] = 0
    return picks


def network_error(
    model: LayerModel, networks: Sequence[Sequence[LayerKey]], measured: Mapping[str, float]
) -> NetworkError:
    """How wrong the model expects its network sums to be (before any calibration)."""
    state = _Networks(model, networks, measured)
    sd = np.sqrt(state.relative_variance())
    estimated = float(state.counts.sum())
    total = sum(1 for net in networks for k in net if k.op is not Op.SKIP)
    return NetworkError(
        expected_mape_pct=float(100 * math.sqrt(2 / math.pi) * sd.mean()) if sd.size else 0.0,
        median_sd_pct=float(100 * np.median(sd)) if sd.size else 0.0,
        estimated_layer_share_pct=100 * estimated / total if total else 0.0,
    )


def spread_networks(predicted_ms: Sequence[float], n: int) -> list[int]:
    """Indices of ``n`` networks at evenly spaced quantiles of their predicted latency."""
    values = np.asarray(predicted_ms, dtype=np.float64)
    if n <= 0 or values.size == 0:
        return []
    order = np.argsort(values, kind="stable")
    positions = np.linspace(0, values.size - 1, min(n, values.size)).round().astype(int)
    return sorted({int(order[p]) for p in positions})


def predicted_sums(
    model: LayerModel, networks: Sequence[Sequence[LayerKey]], measured: Mapping[str, float]
) -> npt.NDArray[np.float64]:
    """Each network's layer sum: measured layers from ``measured``, the rest estimated."""
    return np.asarray(_Networks(model, networks, measured).total_ms)
