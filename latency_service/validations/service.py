"""Validating a predictor version on the device's stored network measurements.

The service computes every figure itself: which networks count (measured ones the version was
not calibrated on, or those the caller names), the version's predictions, the baselines fitted
on the same data as the version, and the accuracy metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_api.schemas.validations import ValidationIn
from latency_service.devices import service as devices
from latency_service.errors import InvalidInput, NotFound
from latency_service.measurements import drift
from latency_service.measurements import service as measurements
from latency_service.measurements.service import Architecture, NetworkMedian
from latency_service.predictors import service as predictors
from latency_service.predictors.tables import Predictor
from latency_service.spaces import space_or_404
from latency_service.validations.tables import Validation
from models import InvalidArchitecture, SearchSpace
from predictor import baselines, compiled
from predictor.accuracy import accuracy, test_retest
from predictor.artifact import PredictorArtifact
from predictor.metrics import HIT_RATES, Metric

log = logging.getLogger(__name__)

MIN_NETWORKS = 2


def validate(session: Session, device_id: int, spec: ValidationIn) -> Validation:
    devices.get(session, device_id)
    space = space_or_404(spec.space)
    version = predictors.get_version(session, device_id, spec.predictor_version)
    compiled = predictors.compile_version(version, space)
    rows = measurements.network_rows(session, device_id, space.name)
    raw = measurements.network_medians(rows).get(space.name, {})
    factors = drift.job_factors(session, device_id)
    corrected = measurements.network_medians(rows, factors).get(space.name, {}) if factors else raw
    # Measured values are read as the version's fit read its calibration networks.
    correct = bool((version.training or {}).get("drift_correction"))
    measured = corrected if correct else raw
    calibrated_on = _calibration_networks(version, space.name)
    chosen = choose_networks(space, measured, calibrated_on, spec.architectures)
    archs = np.asarray(chosen, dtype=np.int64).reshape(len(chosen), space.num_layers)
    measured_ms = np.asarray([measured[a].median_ms for a in chosen])
    predicted_ms, _ = compiled.predict(archs)
    artifact = PredictorArtifact.from_json(version.artifact)
    row = Validation(
        device_id=device_id,
        predictor_id=version.id,
        predictor_version=version.version,
        space=space.name,
        space_sha256=space.digest,
        n=len(chosen),
        metrics=accuracy(predicted_ms, measured_ms),
        baselines=_baselines(space, archs, measured_ms, artifact, calibrated_on),
        details={
            **spec.details,
            "drift_correction": _drift_comparison(
                predicted_ms, chosen, raw, corrected, applied=correct, jobs=len(factors)
            ),
            "calibration_networks": len(calibrated_on),
            "estimated_layers": int(compiled.estimated_positions(archs).any(axis=0).sum()),
            "measurements_per_network": float(np.mean([measured[a].n for a in chosen])),
        },
        noise_floor=test_retest([measured[a].passes_ms for a in chosen]),
        points=[
            {
                "architecture": list(a),
                "measured_ms": float(m),
                "predicted_ms": float(p),
                "n_measurements": measured[a].n,
                "passes_ms": list(measured[a].passes_ms),
            }
            for a, m, p in zip(chosen, measured_ms, predicted_ms, strict=True)
        ],
    )
    session.add(row)
    session.commit()
    return row


def _drift_comparison(
    predicted_ms: np.ndarray[Any, np.dtype[np.float64]],
    chosen: list[Architecture],
    raw: Mapping[Architecture, NetworkMedian],
    corrected: Mapping[Architecture, NetworkMedian],
    *,
    applied: bool,
    jobs: int,
) -> dict[str, Any]:
    """The version's accuracy against the networks as measured and as corrected by the drift
    reference, and the test-retest agreement both ways: whether correcting helps here."""
    out: dict[str, Any] = {"applied": applied, "jobs_with_reference": jobs}
    if jobs == 0:
        return out
    for name, values in (("raw", raw), ("corrected", corrected)):
        figures = accuracy(predicted_ms, [values[a].median_ms for a in chosen])
        out[name] = {k: figures[k] for k in HIT_RATES}
        out[name]["test_retest"] = test_retest([values[a].passes_ms for a in chosen])
    out["helps"] = out["corrected"][Metric.MAPE] < out["raw"][Metric.MAPE]
    return out


def get_for_device(session: Session, device_id: int, validation_id: int) -> Validation:
    devices.get(session, device_id)
    report = session.scalar(
        select(Validation).where(Validation.device_id == device_id, Validation.id == validation_id)
    )
    if report is None:
        raise NotFound(f"device {device_id} has no validation report {validation_id}")
    return report


def list_for_device(session: Session, device_id: int) -> Sequence[Validation]:
    devices.get(session, device_id)
    return session.scalars(
        select(Validation).where(Validation.device_id == device_id).order_by(Validation.id)
    ).all()


def _calibration_networks(version: Predictor, space: str) -> dict[Architecture, float]:
    """The networks (and their medians) the version's calibration was fitted on."""
    networks = (version.training or {}).get("networks", {}).get(space, [])
    return {tuple(int(i) for i in arch): float(ms) for arch, ms in networks}


def choose_networks(
    space: SearchSpace,
    measured: Collection[Architecture],
    calibrated_on: Collection[Architecture],
    asked: list[list[int]] | None,
    metric: str | None = None,
) -> list[Architecture]:
    """The networks to validate on: those asked for, or every measured one the version was
    not calibrated on; at least MIN_NETWORKS. ``metric``: memory or energy (None: latency),
    for the messages."""
    what = "measurement" if metric is None else f"{metric} measurement"
    how = (
        "hwlat validate --n 200 queues and measures them"
        if metric is None
        else f"hwlat jobs create --space {space.name} --networks N --metric {metric}"
    )
    if asked is None:
        chosen = [a for a in measured if a not in calibrated_on]
    else:
        chosen = []
        for n, arch in enumerate(asked):
            try:
                key = space.validate(arch)
            except InvalidArchitecture as error:
                raise InvalidInput(f"architectures[{n}]: {error}") from None
            if key not in measured:
                raise InvalidInput(
                    f"architectures[{n}] ({','.join(map(str, key))}) has no stored {what} "
                    f"on this device; measure it first ({how})"
                )
            if key in calibrated_on:
                raise InvalidInput(
                    f"architectures[{n}] was one of the version's calibration networks; "
                    "validate on networks it did not see"
                )
            chosen.append(key)
        chosen = list(dict.fromkeys(chosen))
    if len(chosen) < MIN_NETWORKS:
        raise InvalidInput(
            f"{len(chosen)} network(s) of {space.name} with a stored {what} are not "
            f"calibration networks of this version; a validation needs at least "
            f"{MIN_NETWORKS}: measure fresh ones ({how})"
        )
    return chosen


def _baselines(
    space: SearchSpace,
    archs: np.ndarray[Any, np.dtype[np.int64]],
    measured_ms: np.ndarray[Any, np.dtype[np.float64]],
    artifact: PredictorArtifact,
    calibrated_on: Mapping[Architecture, float],
) -> dict[str, dict[str, Any]]:
    """Simpler predictors fitted on the same data as the version: its measured layers and its
    calibration networks. None for an imported per-position table, which has no layers."""
    layer_ms = {key: entry.ms for key, entry in artifact.layers.items()}
    if not layer_ms:
        return {}
    # A layer never measured (every window of it rejected, say) enters the plain table sum as
    # the version's own estimate, as it does the version's prediction; the forest and the
    # MACs baseline need no value for it.
    missing = [k for k in space.variants() if str(k) not in layer_ms]
    table_ms = dict(layer_ms)
    if missing:
        try:
            estimates = compiled.lookup(artifact, missing).ms
        except compiled.MissingLayers:
            return {}  # nothing to sum them with
        table_ms.update({str(k): float(v) for k, v in zip(missing, estimates, strict=True)})
    cal_archs = np.asarray(list(calibrated_on), dtype=np.int64).reshape(
        len(calibrated_on), space.num_layers
    )
    ms_per_mac = baselines.macs_proportional(
        space, cal_archs, list(calibrated_on.values()), layer_ms
    )
    out = {
        "macs_proportional": accuracy(
            ms_per_mac * baselines.network_macs(space, archs), measured_ms
        ),
        "table_sum": accuracy(baselines.table_sum(space, archs, table_ms), measured_ms),
    }
    try:
        out["per_op_forest"] = accuracy(
            baselines.per_op_forest(space, archs, layer_ms), measured_ms
        )
    except baselines.NoForest as error:
        # A sample of a large space may miss a whole kind of layer (OFA MobileNetV3's 4 pool
        # variants among 1,257): that baseline cannot be fitted, and is left out, logged.
        log.info("validation of %s without the per_op_forest baseline: %s", space.name, error)
    return out
