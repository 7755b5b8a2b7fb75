"""Slow drift, from the reference model agents time at the start and end of every job.

A job's *factor* scales its measurements to the device's typical speed: the median over jobs
of their reference (mean of start and end) divided by the job's own. Whether applying it helps
is decided by the fit, on the calibration networks (see predictors.service); this module only
measures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from latency_api.schemas.measurements import DriftOut, JobDrift, ReferencePoint
from latency_service.devices import service as devices
from latency_service.measurements import repository

# A reference that moved more than this between jobs marks the device as drifting.
DRIFT_FLAG_PCT = 3.0


def _by_job(rows: Sequence[Any]) -> dict[int, list[float]]:
    """Each job's reference readings, in the order taken, from ``repository.reference_rows``."""
    by_job: dict[int, list[float]] = defaultdict(list)
    for _, job_id, median, _ in rows:
        if job_id is not None:
            by_job[job_id].append(median)
    return dict(by_job)


def job_factors(session: Session, device_id: int) -> dict[int, float]:
    """Per job with a reference: device reference median / the job's reference."""
    readings = _by_job(repository.reference_rows(session, device_id))
    references = {job: float(np.mean(values)) for job, values in readings.items()}
    if not references:
        return {}
    typical = float(np.median(list(references.values())))
    return {job: typical / value for job, value in references.items()}


def report(session: Session, device_id: int) -> DriftOut:
    devices.get(session, device_id)
    rows = repository.reference_rows(session, device_id)
    by_job = _by_job(rows)
    jobs = [
        JobDrift(
            job_id=job,
            start_ms=values[0],
            end_ms=values[-1],
            change_pct=100 * (values[-1] / values[0] - 1),
        )
        for job, values in sorted(by_job.items())
        if len(values) >= 2
    ]
    means = [float(np.mean(v)) for v in by_job.values()]
    spread = 100 * (max(means) / min(means) - 1) if len(means) >= 2 else None
    within = max((abs(j.change_pct) for j in jobs), default=0.0)
    return DriftOut(
        device_id=device_id,
        reference_layer_key=rows[0][0] if rows else None,
        points=[ReferencePoint(job_id=r[1], median_ms=r[2], measured_at=r[3]) for r in rows],
        jobs=jobs,
        spread_pct=spread,
        drifting=max(spread or 0.0, within) > DRIFT_FLAG_PCT,
        threshold_pct=DRIFT_FLAG_PCT,
    )
