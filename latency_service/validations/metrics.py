"""Validating a predictor's peak memory or energy on networks measured for them.

The same figures as a latency validation (``predictor.accuracy``), beside the baseline a user
would otherwise reach for: for memory, parameters plus the largest layer's activations; for
energy, energy proportional to MACs fitted on the version's calibration networks. Computed on
request from the stored measurements, not stored: the dashboards' latency reports stay
latency's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.validations import MetricPoint, MetricValidationIn, MetricValidationOut
from latency_service.devices import service as devices
from latency_service.measurements import service as measurements
from latency_service.measurements.service import Architecture
from latency_service.predictors import service as predictors
from latency_service.predictors.predict import predict_metric
from latency_service.spaces import space_or_404
from latency_service.validations.service import choose_networks
from models import LayerKey, SearchSpace
from models.units import BYTES_PER_MB
from predictor import baselines
from predictor.accuracy import accuracy, test_retest
from predictor.artifact import PredictorArtifact
from predictor.memory_energy import arithmetic_memory_bytes
from predictor.metrics import Metric

UNITS = {DeviceMetric.memory: "MB", DeviceMetric.energy: "mJ"}
# Stored bytes to the report's MB; energy is stored in mJ already.
_TO_UNIT = {DeviceMetric.memory: 1 / BYTES_PER_MB, DeviceMetric.energy: 1.0}


def validate_metric(
    session: Session, device_id: int, spec: MetricValidationIn
) -> MetricValidationOut:
    devices.get(session, device_id)
    space = space_or_404(spec.space)
    metric = spec.metric
    version = predictors.get_version(session, device_id, spec.predictor_version)
    artifact = PredictorArtifact.from_json(version.artifact)
    values = measurements.current_metrics(session, device_id)
    scale = _TO_UNIT[metric]
    measured = {a: v * scale for a, v in values.networks[metric].get(space.name, {}).items()}
    passes = values.network_values[metric].get(space.name, {})
    recorded = (version.training or {}).get("beside_latency", {}).get(str(metric), {})
    calibrated_on = {tuple(a) for a in recorded.get("networks", {}).get(space.name, [])}
    chosen = choose_networks(space, measured, calibrated_on, spec.architectures, str(metric))
    networks = [space.network(a) for a in chosen]
    predicted = predict_metric(metric, artifact, space, networks, f"predictor v{version.version}")
    truth = np.asarray([measured[a] for a in chosen])
    calibration = {a: measured[a] for a in calibrated_on if a in measured}
    return MetricValidationOut(
        device_id=device_id,
        predictor_version=version.version,
        space=space.name,
        metric=metric,
        unit=UNITS[metric],
        n=len(chosen),
        metrics=_figures(predicted, truth),
        baselines=_baselines(metric, space, networks, truth, calibration, artifact),
        noise_floor=test_retest([tuple(v * scale for v in passes[a]) for a in chosen]),
        points=[
            MetricPoint(
                architecture=list(a),
                measured=float(m),
                predicted=float(p),
                n_measurements=len(passes[a]),
            )
            for a, m, p in zip(chosen, truth, predicted, strict=True)
        ],
    )


def _figures(predicted: Any, measured: Any) -> dict[str, Any]:
    """``predictor.accuracy.accuracy``'s figures; its RMSE, named for latency, as ``rmse`` in
    the report's unit."""
    figures = {str(k): v for k, v in accuracy(predicted, measured).items()}
    figures["rmse"] = figures.pop(str(Metric.RMSE_MS))
    return figures


def _baselines(
    metric: DeviceMetric,
    space: SearchSpace,
    networks: Sequence[Sequence[LayerKey]],
    measured: Any,
    calibration: Mapping[Architecture, float],
    artifact: PredictorArtifact,
) -> dict[str, dict[str, Any]]:
    if metric is DeviceMetric.memory:
        return {"arithmetic": _figures(arithmetic_memory_bytes(networks) / BYTES_PER_MB, measured)}
    if artifact.energy is None:
        return {}
    archs = np.asarray(list(calibration), dtype=np.int64).reshape(
        len(calibration), space.num_layers
    )
    mj_per_mac = baselines.macs_proportional(
        space, archs, list(calibration.values()), artifact.energy.layers_mj
    )
    macs = np.array([float(sum(k.macs for k in n)) for n in networks])
    return {"macs_proportional": _figures(mj_per_mac * macs, measured)}
