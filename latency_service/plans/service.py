"""Active sampling: choose a device's next measurements, and queue them as jobs.

The choice is ``predictor.sampling``'s (pure); this module gathers what it needs from the
database: the device's measured layers, what other devices measured (the layer model's prior),
the networks of the space it already measured.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from latency_api.schemas.jobs import JobIn, split_payloads
from latency_api.schemas.plans import PlanBasis, PlanIn, PlannedLayer, PlanOut
from latency_service.devices import service as devices
from latency_service.jobs import service as jobs
from latency_service.measurements import service as measurements
from latency_service.predictors.service import other_devices_layers
from latency_service.spaces import space_or_404
from models import SearchSpace
from predictor.layer_model import LayerModel, can_fit, fit_layer_model, uninformed_model
from predictor.sampling import choose_layers, network_error, predicted_sums, spread_networks

# Layers or networks per job: small jobs bound what a lost lease throws away.
JOB_CHUNK = 25


def _model(
    measured: dict[str, float], others: dict[str, dict[str, float]], space: SearchSpace
) -> tuple[LayerModel, PlanBasis]:
    if can_fit(measured, others):
        return fit_layer_model(measured, others), "device" if measured else "other_devices"
    return uninformed_model(space.variants()), "uninformed"


def plan(session: Session, device_id: int, spec: PlanIn) -> PlanOut:
    devices.get(session, device_id)
    space = space_or_404(spec.space)
    measured = {c.layer_key: c.median_ms for c in measurements.current_layers(session, device_id)}
    model, basis = _model(measured, other_devices_layers(session, device_id), space)
    archs = space.sample(spec.sample, spec.seed)
    networks = [space.network(a) for a in archs]
    picks = choose_layers(model, networks, measured, spec.layers)
    error = network_error(model, networks, measured)
    done = measurements.network_medians(measurements.network_rows(session, device_id, space.name))
    already = set(done.get(space.name, {}))
    chosen: list[list[int]] = []
    if spec.networks:
        candidates = [
            [int(c) for c in a]
            for a in space.sample(spec.sample, spec.seed + 1)
            if tuple(int(c) for c in a) not in already
        ]
        sums = predicted_sums(model, [space.network(a) for a in candidates], measured)
        chosen = [candidates[i] for i in spread_networks(sums.tolist(), spec.networks)]
    job_ids: list[int] = []
    if spec.create_jobs:
        for payload in split_payloads(
            layers=[p.layer_key for p in picks],
            space=space.name,
            architectures=chosen,
            chunk=JOB_CHUNK,
        ):
            job = jobs.create(
                session,
                JobIn(device_id=device_id, payload=payload, timing=spec.timing, fit_after=True),
            )
            job_ids.append(job.id)
    return PlanOut(
        device_id=device_id,
        space=space.name,
        basis=basis,
        measured_layers=len(measured),
        measured_networks=len(already),
        expected_mape_pct=error.expected_mape_pct if basis != "uninformed" else None,
        estimated_layer_share_pct=error.estimated_layer_share_pct,
        layers=[
            PlannedLayer(layer_key=p.layer_key, gain=p.gain, networks_holding=p.networks_holding)
            for p in picks
        ],
        architectures=chosen,
        job_ids=job_ids,
    )
