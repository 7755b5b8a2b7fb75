"""Job lifecycle: queued -> leased -> done | failed, with expiring leases and bounded retries."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from latency_service.db import utcnow
from latency_service.devices import service as devices
from latency_service.devices.tables import Device
from latency_service.errors import LeaseLost, NotFound
from latency_service.jobs import repository
from latency_service.jobs.schemas import ClaimIn, JobIn, JobStatus
from latency_service.jobs.tables import Job

CLAIM_SCAN = 50


def create(session: Session, spec: JobIn) -> Job:
    if spec.device_id is not None:
        devices.get(session, spec.device_id)
    job = Job(
        kind=spec.kind.value,
        device_id=spec.device_id,
        selector=spec.selector,
        payload=spec.payload,
        settings=spec.settings.model_dump(),
        max_attempts=spec.max_attempts,
    )
    session.add(job)
    session.commit()
    return job


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}; list jobs with GET /v1/jobs")
    return job


def list_jobs(
    session: Session, *, status: JobStatus | None, device_id: int | None, limit: int
) -> Sequence[Job]:
    return repository.list_jobs(
        session, status=status.value if status else None, device_id=device_id, limit=limit
    )


def count_by_status(session: Session) -> dict[str, int]:
    """Jobs per status, every status present (0 when none)."""
    found = repository.count_by_status(session)
    return {status.value: found.get(status.value, 0) for status in JobStatus}


def per_agent(session: Session) -> list[dict[str, Any]]:
    """Agents seen (holding or having finished a job), with their jobs by status and retries."""
    return [dict(row._mapping) for row in repository.per_agent(session)]


def matches(job: Job, device: Device) -> bool:
    if job.device_id is not None:
        return job.device_id == device.id
    return all(str(getattr(device, field)) == str(value) for field, value in job.selector.items())


def claim(session: Session, spec: ClaimIn, now: datetime | None = None) -> tuple[Job, str] | None:
    """Lease the oldest job this device may run; None when there is none."""
    device = devices.get(session, spec.device_id)
    now = now or utcnow()
    after_id = 0
    while True:
        candidates = repository.claimable(session, now, after_id=after_id, limit=CLAIM_SCAN)
        for job in candidates:
            if not matches(job, device):
                continue
            if job.status == JobStatus.leased and job.attempts >= job.max_attempts:
                _finish(
                    job,
                    JobStatus.failed,
                    now,
                    error=(
                        f"lease expired on attempt {job.attempts} of {job.max_attempts} "
                        f"(last agent: {job.lease_owner})"
                    ),
                )
                continue
            token = secrets.token_hex(16)
            job.status = JobStatus.leased.value
            job.attempts += 1
            job.lease_owner = spec.agent
            job.lease_token = token
            job.lease_expires_at = now + timedelta(seconds=spec.lease_seconds)
            job.claimed_device_id = device.id
            job.updated_at = now
            session.commit()
            return job, token
        session.commit()  # keeps jobs failed above; releases the rows locked in this scan
        if len(candidates) < CLAIM_SCAN:
            return None
        after_id = candidates[-1].id


def held(session: Session, job_id: int, lease_token: str, now: datetime | None = None) -> Job:
    """The job, locked, if ``lease_token`` still holds its lease; else :class:`LeaseLost`."""
    job = repository.get_for_update(session, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    now = now or utcnow()
    if (
        job.status != JobStatus.leased
        or job.lease_token != lease_token
        or job.lease_expires_at is None
        or job.lease_expires_at <= now
    ):
        raise LeaseLost(
            f"the lease on job {job_id} expired or was taken over (status {job.status}); "
            "drop this work and claim again"
        )
    return job


def heartbeat(session: Session, job_id: int, lease_token: str, lease_seconds: float) -> Job:
    now = utcnow()
    job = held(session, job_id, lease_token, now)
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.updated_at = now
    session.commit()
    return job


def complete(session: Session, job_id: int, lease_token: str, result: dict[str, object]) -> Job:
    now = utcnow()
    job = held(session, job_id, lease_token, now)
    job.result = dict(result)
    _finish(job, JobStatus.done, now)
    session.commit()
    return job


def fail(session: Session, job_id: int, lease_token: str, reason: str, retry: bool) -> Job:
    now = utcnow()
    job = held(session, job_id, lease_token, now)
    job.error = reason
    if retry and job.attempts < job.max_attempts:
        job.status = JobStatus.queued.value
        job.lease_token = job.lease_owner = job.lease_expires_at = None
        job.updated_at = now
    else:
        _finish(job, JobStatus.failed, now, error=reason)
    session.commit()
    return job


def _finish(job: Job, status: JobStatus, now: datetime, error: str | None = None) -> None:
    job.status = status.value
    job.lease_token = None
    job.lease_expires_at = None
    job.finished_at = job.updated_at = now
    if error is not None:
        job.error = error
