"""Runtime tables for the search tests, built in memory the way the service answers them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from latency_api import ErrorCode, ServiceError
from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.predictors import RuntimeTable
from models import LayerKey, Op, SearchSpace
from models.units import BYTES_PER_MB
from nas.latency import Prediction
from predictor.artifact import live_bytes, weight_bytes


def macs_ms(key: LayerKey) -> float:
    """A plausible latency: 1 ms per 10 M MACs plus 0.01 ms overhead; skip costs nothing."""
    return 0.0 if key.op is Op.SKIP else 0.01 + key.macs / 1e7


def table_json(
    space: SearchSpace,
    ms_of: Callable[[LayerKey], float] = macs_ms,
    *,
    a: float = 1.0,
    b: float = 0.0,
    fixed_in_sum: bool = True,
    version: int = 1,
) -> dict[str, Any]:
    fixed = sum(ms_of(k) for k in (*space.prefix, *space.suffix))
    return {
        "space": space.name,
        "predictor_version": version,
        "layers": [
            {
                "position": p,
                "candidates": [
                    {
                        "index": i,
                        "candidate": c.label,
                        "layer_key": str(slot.key(i)),
                        "ms": ms_of(slot.key(i)),
                        "estimated": False,
                    }
                    for i, c in enumerate(slot.candidates)
                ],
            }
            for p, slot in enumerate(space.layers)
        ],
        "fixed_ms": fixed if fixed_in_sum else None,
        "calibration": {"a": a, "b": b, "fixed_in_sum": fixed_in_sum},
    }


def table_for(
    space: SearchSpace, ms_of: Callable[[LayerKey], float] = macs_ms, **kw: Any
) -> RuntimeTable:
    return RuntimeTable.model_validate(table_json(space, ms_of, **kw))


def random_table(space: SearchSpace, seed: int, **kw: Any) -> RuntimeTable:
    """Positive random latencies per key (skip 0): no structure a test could lean on."""
    rng = np.random.default_rng(seed)
    values = {k: float(rng.uniform(0.5, 5.0)) for k in space.variants(include_skip=False)}
    return table_for(space, lambda k: 0.0 if k.op is Op.SKIP else values[k], **kw)


def peak_bytes(layers: Sequence[LayerKey]) -> float:
    """A device's peak as the service models it: 3 MB of runtime, the weights twice (a packed
    copy beside the file) and the largest live set once."""
    return float(3e6 + 2.0 * weight_bytes(layers).sum() + live_bytes(layers).max())


def peak_memory_mb(space: SearchSpace, architecture: Sequence[int]) -> float:
    return peak_bytes(space.network(architecture)) / BYTES_PER_MB


def energy_mj(space: SearchSpace, architecture: Sequence[int]) -> float:
    """A sum over layers, as the service's energy model is: MAC- and activation-shaped."""
    layers = [k for k in space.network(architecture) if k.op is not Op.SKIP]
    return float(sum(1e-8 * k.macs + 1e-9 * k.activation_bytes for k in layers))


class TableSource:
    """A LatencySource over a fixed table, counting predict requests and the metrics asked.

    With ``space`` it also predicts peak memory and energy (the formulas above); without, it
    refuses them as the service refuses a device never measured for them."""

    def __init__(self, table: RuntimeTable, space: SearchSpace | None = None) -> None:
        self.table = table
        self.space = space
        self.predict_calls = 0
        self.metrics_asked: list[list[DeviceMetric]] = []

    def runtime_table(self, device_id: int, space: str) -> RuntimeTable:
        return self.table

    def predict(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        metrics: Sequence[DeviceMetric] = (),
    ) -> Prediction:
        self.predict_calls += 1
        self.metrics_asked.append(list(metrics))
        if metrics and self.space is None:
            raise ServiceError(
                409,
                ErrorCode.predictor_incomplete,
                f"device {device_id}'s predictor has no model of {metrics[0].value}",
            )
        latency = tuple(self.table.latency_ms(a) for a in architectures)
        memory = energy = None
        if self.space is not None and DeviceMetric.memory in metrics:
            memory = tuple(peak_memory_mb(self.space, a) for a in architectures)
        if self.space is not None and DeviceMetric.energy in metrics:
            energy = tuple(energy_mj(self.space, a) for a in architectures)
        return Prediction(
            latency,
            tuple(0.0 for _ in latency),
            self.table.predictor_version,
            peak_memory_mb=memory,
            energy_mj=energy,
        )
