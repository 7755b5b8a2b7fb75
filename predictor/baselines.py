"""What a user would otherwise predict with, fitted on the same data as the predictor.

- ``macs``: latency proportional to MACs (scale fitted on the calibration networks).
- ``table_sum``: the plain sum of measured layers, no calibration (Single-Path NAS as is).
- ``per_op_forest``: a random forest per operation type (MBConv, conv, head) over layer
  features, fitted on the device's measured layers and its per-layer predictions summed. This
  borrows nn-Meter's model family, not its method: nn-Meter detects fused kernels and trains
  each kernel's forest on thousands of sampled configurations, where this forest sees only the
  few dozen layers the predictor itself was fitted on, so it is not reported under nn-Meter's
  name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from models import LayerKey, Op, SearchSpace, parse
from models.features import feature_matrix


class NoForest(ValueError):
    """The networks have a kind of layer of which no layer was measured: no forest for it."""


def network_macs(space: SearchSpace, archs: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    return _sum_per_layer(space, archs, lambda keys: np.array([k.macs for k in keys], float))


def macs_proportional(
    space: SearchSpace,
    calibration_archs: npt.NDArray[np.int64],
    calibration_ms: Sequence[float],
    layer_ms: Mapping[str, float],
) -> float:
    """ms per MAC, fitted on the calibration networks, else on the measured layers."""
    if len(calibration_ms):
        macs = network_macs(space, calibration_archs)
        y = np.asarray(calibration_ms)
        # Relative least squares through the origin.
        return float(np.sum(macs / y) / np.sum((macs / y) ** 2))
    keys = [parse(k) for k in layer_ms]
    total_macs = sum(k.macs for k in keys)
    return float(sum(layer_ms.values()) / total_macs)


def table_sum(
    space: SearchSpace, archs: npt.NDArray[np.int64], layer_ms: Mapping[str, float]
) -> npt.NDArray[np.float64]:
    """Σ of measured layers over the whole network; a layer without a value is an error."""
    return _sum_per_layer(space, archs, lambda keys: np.array([layer_ms[str(k)] for k in keys]))


def per_op_forest(
    space: SearchSpace, archs: npt.NDArray[np.int64], layer_ms: Mapping[str, float], seed: int = 0
) -> npt.NDArray[np.float64]:
    """One random forest per op type on layer features, per-layer predictions summed."""
    keys = [parse(k) for k in layer_ms]
    from sklearn.ensemble import RandomForestRegressor  # imported where a forest is fitted

    forests: dict[Op, RandomForestRegressor] = {}
    for op in {k.op for k in keys}:
        chosen = [k for k in keys if k.op is op]
        forest = RandomForestRegressor(n_estimators=100, random_state=seed)
        forest.fit(feature_matrix(chosen), [layer_ms[str(k)] for k in chosen])
        forests[op] = forest

    def predict(layer_keys: list[LayerKey]) -> npt.NDArray[np.float64]:
        out = np.zeros(len(layer_keys))
        for op, forest in forests.items():
            idx = [i for i, k in enumerate(layer_keys) if k.op is op]
            if idx:
                out[idx] = forest.predict(feature_matrix([layer_keys[i] for i in idx]))
        unknown = {k.op for k in layer_keys} - set(forests) - {Op.SKIP}
        if unknown:
            raise NoForest(f"no forest for {sorted(unknown)}: no layer of that kind measured")
        return out

    return _sum_per_layer(space, archs, predict)


def _sum_per_layer(
    space: SearchSpace,
    archs: npt.NDArray[np.int64],
    values: Callable[[list[LayerKey]], npt.NDArray[np.float64]],
) -> npt.NDArray[np.float64]:
    """Evaluate ``values`` (keys -> ms) once per distinct layer the networks have (skips cost
    nothing), then sum over each whole network, fixed parts included."""
    networks = [space.network(arch) for arch in archs]
    keys = list(dict.fromkeys(k for network in networks for k in network if k.op is not Op.SKIP))
    per_key = dict(zip(keys, values(keys).tolist(), strict=True)) if keys else {}
    return np.asarray(
        [sum(per_key.get(k, 0.0) for k in network) for network in networks], dtype=np.float64
    )
