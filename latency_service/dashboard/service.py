"""The rows behind every dashboard table and chart, built from the domain services.

Each function returns a list of flat rows (one dict per row, the same keys in every row), so
that one row set serves a chart, its JSON link and its CSV link.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.predictors import RuntimeTable
from latency_api.schemas.validations import ValidationOut
from latency_service.devices import service as devices
from latency_service.errors import NotFound
from latency_service.jobs import service as jobs
from latency_service.measurements import service as measurements
from latency_service.predictors import service as predictors
from latency_service.predictors.runtime_table import runtime_table
from latency_service.predictors.service import CompiledCache
from latency_service.spaces import service as space_service
from latency_service.validations import service as validation_reports
from models import SearchSpace, format_architecture, get_space
from models.units import BYTES_PER_MB
from predictor.artifact import PredictorArtifact
from predictor.metrics import FIGURES, Metric

Row = dict[str, Any]

RECENT_JOBS = 200


def device_rows(session: Session) -> list[Row]:
    counts = measurements.counts_by_device(session)
    rows = []
    for device in devices.list_devices(session):
        latest = predictors.latest_version(session, device.id)
        n_layers, n_networks = counts.get(device.id, (0, 0))
        rows.append(
            {
                "id": device.id,
                "name": device.name,
                "kind": device.kind,
                "model": device.model,
                "soc": device.soc,
                "runtime": device.runtime,
                "runtime_version": device.runtime_version,
                "delegate": device.delegate,
                "threads": device.threads,
                "precision": device.precision,
                "affinity_mask": device.affinity_mask,
                "layer_measurements": n_layers,
                "network_measurements": n_networks,
                "latest_predictor_version": latest[1] if latest else None,
            }
        )
    return rows


def coverage_rows(session: Session, device_id: int) -> list[Row]:
    """Per space: how many of its layer variants the device has measured (the rest the
    predictor's layer model estimates), and how many of its networks."""
    devices.get(session, device_id)
    measured = {layer.layer_key for layer in measurements.current_layers(session, device_id)}
    networks: dict[str, set[str]] = {}
    for space_name, arch, *_ in measurements.network_rows(session, device_id):
        networks.setdefault(space_name, set()).add(arch)
    rows = []
    for name in space_service.names(session):
        variants = {str(k) for k in get_space(name).variants()}
        have = len(variants & measured)
        rows.append(
            {
                "space": name,
                "layer_variants": len(variants),
                "measured": have,
                "measured_pct": 100.0 * have / len(variants) if variants else 0.0,
                "estimated": len(variants) - have,
                "networks_measured": len(networks.get(name, ())),
            }
        )
    return rows


def similar_device_rows(session: Session, device_id: int) -> list[Row]:
    """The known devices the newest predictor's layer model leaned on: its prior's weights,
    decided from the layers both devices measured (none: fitted on its own layers)."""
    newest = predictors.latest_version(session, device_id)
    if newest is None:
        return []
    latest = predictors.get_version(session, device_id, newest[1])
    model = latest.metrics.get("layer_model") or {}
    return [
        {
            "predictor_version": latest.version,
            "device": s["device"],
            "weight": s["weight"],
            "speed_ratio": s["speed_ratio"],
            "spread_pct": s["spread_pct"],
            "shared_layers": s["shared_layers"],
            "prior_used": model.get("prior_width") is not None,
        }
        for s in model.get("similar_devices", [])
    ]


def _table_rows(table: RuntimeTable) -> list[Row]:
    return [
        {
            "position": layer.position,
            "candidate": c.index,
            "candidate_label": c.candidate,
            "layer_key": c.layer_key,
            "ms": c.ms,
            "estimated": c.estimated,
        }
        for layer in table.layers
        for c in layer.candidates
    ]


def _table(
    session: Session, cache: CompiledCache, device_id: int, space: SearchSpace
) -> RuntimeTable:
    return runtime_table(cache.compiled(session, device_id, space))


def runtime_rows(
    session: Session, cache: CompiledCache, device_id: int, space: SearchSpace
) -> list[Row]:
    """The newest version's searchable layer x candidate table (the runtime table)."""
    table = _table(session, cache, device_id, space)
    return [{**row, "predictor_version": table.predictor_version} for row in _table_rows(table)]


def compare_rows(
    session: Session, cache: CompiledCache, space: SearchSpace, device_a: int, device_b: int
) -> list[Row]:
    """Per layer x candidate, device A's latency over device B's (skip, 0 over 0, is None)."""
    a = _table_rows(_table(session, cache, device_a, space))
    b = _table_rows(_table(session, cache, device_b, space))
    return [
        {
            **{k: ra[k] for k in ("position", "candidate", "candidate_label", "layer_key")},
            "a_ms": ra["ms"],
            "b_ms": rb["ms"],
            "ratio": ra["ms"] / rb["ms"] if rb["ms"] > 0 else None,
        }
        for ra, rb in zip(a, b, strict=True)
    ]


def validations(session: Session, device_id: int) -> list[ValidationOut]:
    # The API's own listing, so the dashboard shows exactly what clients get.
    rows = validation_reports.list_for_device(session, device_id)
    return [ValidationOut.model_validate(r) for r in rows]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def accuracy_rows(session: Session, device_id: int) -> list[Row]:
    """One row per validation report and model (the predictor, then each baseline)."""
    rows: list[Row] = []
    for report in validations(session, device_id):
        models = {"predictor": report.metrics, **report.baselines}
        for model, metrics in models.items():
            rows.append(
                {
                    "validation_id": report.id,
                    "predictor_version": report.predictor_version,
                    "space": report.space,
                    "model": model,
                    Metric.N: report.n,
                    **{name: _number(metrics.get(name)) for name in FIGURES},
                    "created_at": report.created_at.isoformat(),
                }
            )
    return rows


def points_rows(session: Session, device_id: int, validation_id: int) -> list[Row]:
    """Predicted against measured per validated network."""
    report = ValidationOut.model_validate(
        validation_reports.get_for_device(session, device_id, validation_id)
    )
    rows = []
    for point in report.points:
        measured, predicted = point.measured_ms, point.predicted_ms
        rows.append(
            {
                "architecture": format_architecture(point.architecture),
                "measured_ms": measured,
                "predicted_ms": predicted,
                "error_pct": 100 * (predicted - measured) / measured,
            }
        )
    return rows


def history_rows(session: Session, device_id: int, layer_key: str) -> list[Row]:
    """A layer's measurements over time, each flagged if the current value left it out."""
    current = {c.layer_key: c for c in measurements.current_layers(session, device_id)}
    if layer_key not in current:
        raise NotFound(
            f"device {device_id} has no measurement of layer {layer_key!r}; pick one from "
            f"GET /v1/devices/{device_id}/layers"
        )
    outliers = set(current[layer_key].outlier_ids)
    return [
        {
            "id": row.id,
            "measured_at": row.measured_at.isoformat(),
            "median_ms": row.median_ms,
            "p90_ms": row.p90_ms,
            "min_ms": row.min_ms,
            "max_ms": row.max_ms,
            "temp_before_c": row.temp_before_c,
            "temp_after_c": row.temp_after_c,
            "outlier": row.id in outliers,
            "current_ms": current[layer_key].median_ms,
        }
        for row in measurements.layer_history(session, device_id, layer_key)
    ]


def layer_rows(session: Session, device_id: int) -> list[Row]:
    beside = measurements.current_metrics(session, device_id).layers
    memory, energy = beside[DeviceMetric.memory], beside[DeviceMetric.energy]
    return [
        {
            "layer_key": c.layer_key,
            "median_ms": c.median_ms,
            "n": c.n,
            "n_outliers": c.n - c.n_used,
            "spread_pct": c.spread_pct,
            "peak_memory_mb": memory[c.layer_key] / BYTES_PER_MB if c.layer_key in memory else None,
            "energy_mj": energy.get(c.layer_key),
            "last_measured_at": c.last_measured_at.isoformat(),
        }
        for c in measurements.current_layers(session, device_id)
    ]


def metric_rows(session: Session, device_id: int) -> list[Row]:
    """Each metric the device measures, what it has measured, how, and what the newest
    predictor version makes of it."""
    devices.get(session, device_id)
    beside = measurements.current_metrics(session, device_id)
    methods = measurements.latest_metric_methods(session, device_id)
    latest = predictors.latest_version(session, device_id)
    artifact = None
    if latest is not None:
        stored = predictors.get_version(session, device_id, latest[1])
        artifact = PredictorArtifact.from_json(stored.artifact)
    rows: list[Row] = [
        {
            "metric": "latency",
            "unit": "ms",
            "layers_measured": len(measurements.current_layers(session, device_id)),
            "networks_measured": len(measurements.network_rows(session, device_id)),
            "method": "timed runs (median)",
            "model": "none" if artifact is None else "per-layer table + layer model, a·Σ+b",
        }
    ]
    for metric, unit in ((DeviceMetric.memory, "MB (2^20 B)"), (DeviceMetric.energy, "mJ")):
        rows.append(
            {
                "metric": str(metric),
                "unit": unit,
                "layers_measured": len(beside.layers[metric]),
                "networks_measured": sum(len(v) for v in beside.network_values[metric].values()),
                "method": methods.get(metric),
                "model": _metric_model(artifact, metric),
            }
        )
    return rows


def _metric_model(artifact: PredictorArtifact | None, metric: DeviceMetric) -> str:
    if artifact is None:
        return "none"
    if metric is DeviceMetric.memory:
        memory = artifact.memory
        if memory is None:
            return "none"
        return (
            f"{memory.fixed_bytes / BYTES_PER_MB:.2f} MB + {memory.per_weight_byte:.2f}·weights "
            f"+ {memory.per_live_byte:.2f}·largest live set ({memory.n_layers} layers, "
            f"{len(memory.calibration)} space calibration(s))"
        )
    energy = artifact.energy
    if energy is None:
        return "none"
    regression = (
        "no regression yet"
        if energy.regression is None
        else f"regression CV MAPE {energy.regression.cv_mape_pct:.1f}%"
    )
    return f"Σ layers: {len(energy.layers_mj)} measured, {regression}"


def state_rows(session: Session) -> list[Row]:
    return [{"status": s, "jobs": n} for s, n in jobs.count_by_status(session).items()]


def agent_rows(session: Session) -> list[Row]:
    return [{**row, "last_seen_at": _iso(row["last_seen_at"])} for row in jobs.per_agent(session)]


def job_rows(session: Session) -> list[Row]:
    return [
        {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "device_id": job.claimed_device_id or job.device_id,
            "agent": job.lease_owner,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "updated_at": _iso(job.updated_at),
            "error": job.error,
        }
        for job in jobs.list_page(
            session, status=None, device_id=None, before_id=None, limit=RECENT_JOBS
        )
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
