"""Job lifecycle: queued -> leased -> done | failed, with expiring leases and bounded retries.

Every agent-side call is safe to repeat after a lost answer: a claim carries the agent's
request id (the repeat gets the same lease), and complete or fail with the lease that already
completed or released the job is answered again rather than refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from latency_api.schemas.enums import JobStatus
from latency_api.schemas.jobs import ClaimIn, DeviceSelector, JobIn, JobResult
from latency_service.db import utcnow
from latency_service.devices import service as devices
from latency_service.devices.tables import Device
from latency_service.errors import LeaseLost, NotFound
from latency_service.jobs import repository
from latency_service.jobs.tables import Job
from latency_service.measurements import repository as measurements

CLAIM_SCAN = 50


def create(session: Session, spec: JobIn) -> Job:
    if spec.device_id is not None:
        devices.get(session, spec.device_id)
    job = Job(
        kind=spec.payload.kind,
        device_id=spec.device_id,
        selector=spec.selector.model_dump(mode="json", exclude_none=True)
        if spec.selector is not None
        else None,
        payload=spec.payload.model_dump(mode="json"),
        timing=spec.timing.model_dump(mode="json", exclude_none=True),
        max_attempts=spec.max_attempts,
        fit_after=spec.fit_after,
    )
    session.add(job)
    session.commit()
    return job


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}; list jobs with GET /v1/jobs")
    return job


def list_page(
    session: Session,
    *,
    status: JobStatus | None,
    device_id: int | None,
    before_id: int | None,
    limit: int,
) -> Sequence[Job]:
    """Newest first; ``before_id`` continues after the last job of the previous page."""
    return repository.list_jobs(
        session,
        status=status.value if status else None,
        device_id=device_id,
        before_id=before_id,
        limit=limit,
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
    wanted = DeviceSelector.model_validate(job.selector or {}).fields()
    return all(str(getattr(device, name)) == value for name, value in wanted.items())


def claim(session: Session, spec: ClaimIn, now: datetime | None = None) -> tuple[Job, str] | None:
    """Lease the oldest job this device may run; None when there is none."""
    device = devices.get(session, spec.device_id)
    now = now or utcnow()
    if spec.request_id is not None:
        repeated = repository.leased_by_request(session, spec.agent, spec.request_id)
        if repeated is not None and repeated.lease_token is not None:
            return repeated, repeated.lease_token
    after_id = 0
    while True:
        candidates = repository.claimable(session, now, after_id=after_id, limit=CLAIM_SCAN)
        for job in candidates:
            if not matches(job, device):
                continue
            if job.attempts > 0:
                # An earlier lease ran out or gave the job back without completing it: what it
                # uploaded is dropped, as LeaseLost tells agents, so the job is stored once.
                measurements.drop_job_uploads(session, job.id)
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
            job.claim_request_id = spec.request_id
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
    job = _locked(session, job_id)
    if not _holds(job, lease_token, now or utcnow()):
        raise _lost(job)
    return job


def heartbeat(session: Session, job_id: int, lease_token: str, lease_seconds: float) -> Job:
    now = utcnow()
    job = held(session, job_id, lease_token, now)
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.updated_at = now
    session.commit()
    return job


def complete(
    session: Session, job_id: int, lease_token: str, result: JobResult
) -> tuple[Job, bool]:
    """The job, done; and whether this call finished it (False for a repeat)."""
    now = utcnow()
    job = _locked(session, job_id)
    if job.status == JobStatus.done and job.released_lease_token == lease_token:
        session.commit()
        return job, False  # a repeat of the call that completed it
    if not _holds(job, lease_token, now):
        raise _lost(job)
    job.result = result.model_dump(mode="json")
    _finish(job, JobStatus.done, now)
    job.released_lease_token = lease_token
    session.commit()
    return job, True


def fail(session: Session, job_id: int, lease_token: str, reason: str, retry: bool) -> Job:
    now = utcnow()
    job = _locked(session, job_id)
    if job.released_lease_token == lease_token and job.status != JobStatus.done:
        session.commit()
        return job  # a repeat of the call that gave it back or failed it
    if not _holds(job, lease_token, now):
        raise _lost(job)
    job.error = reason
    job.released_lease_token = lease_token
    if retry and job.attempts < job.max_attempts:
        job.status = JobStatus.queued.value
        job.lease_token = job.lease_owner = job.lease_expires_at = None
        job.claim_request_id = None
        job.updated_at = now
    else:
        _finish(job, JobStatus.failed, now, error=reason)
    session.commit()
    return job


def _locked(session: Session, job_id: int) -> Job:
    job = repository.get_for_update(session, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return job


def _holds(job: Job, lease_token: str, now: datetime) -> bool:
    return (
        job.status == JobStatus.leased
        and job.lease_token == lease_token
        and job.lease_expires_at is not None
        and job.lease_expires_at > now
    )


def _lost(job: Job) -> LeaseLost:
    return LeaseLost(
        f"the lease on job {job.id} expired or was taken over (status {job.status}); "
        "drop this work and claim again"
    )


def _finish(job: Job, status: JobStatus, now: datetime, error: str | None = None) -> None:
    job.status = status.value
    job.lease_token = None
    job.lease_expires_at = None
    job.claim_request_id = None
    job.finished_at = job.updated_at = now
    if error is not None:
        job.error = error
