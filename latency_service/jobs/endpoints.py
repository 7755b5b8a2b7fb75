from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from latency_api.schemas.common import Page
from latency_api.schemas.enums import JobStatus
from latency_api.schemas.jobs import (
    ClaimedJob,
    ClaimIn,
    CompleteIn,
    FailIn,
    JobIn,
    JobOut,
    LeaseIn,
)
from latency_service.deps import (
    AdminToken,
    IdFilter,
    IdPath,
    IngestToken,
    ReadSessionDep,
    ReadToken,
    SessionDep,
)
from latency_service.jobs import service
from latency_service.paging import decode_cursor, encode_cursor
from latency_service.predictions import service as predictions
from latency_service.predictors import service as predictors

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", response_model=JobOut, status_code=201)
def create_job(spec: JobIn, session: SessionDep, _: AdminToken) -> JobOut:
    """Queue a profiling job for one device or for any device matching a selector."""
    return JobOut.model_validate(service.create(session, spec))


@router.get("", response_model=Page[JobOut])
def list_jobs(
    session: ReadSessionDep,
    _: ReadToken,
    status: JobStatus | None = None,
    device_id: IdFilter = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[JobOut]:
    """Jobs, newest first, a page at a time."""
    jobs = service.list_page(
        session,
        status=status,
        device_id=device_id,
        before_id=decode_cursor(cursor),
        limit=limit,
    )
    next_cursor = encode_cursor(jobs[-1].id) if len(jobs) == limit else None
    return Page[JobOut](items=[JobOut.model_validate(j) for j in jobs], next_cursor=next_cursor)


@router.post(
    "/claim",
    response_model=ClaimedJob,
    responses={204: {"description": "No job for this device right now"}},
)
def claim_job(spec: ClaimIn, session: SessionDep, _: IngestToken) -> ClaimedJob | Response:
    """Lease the oldest job this device may run; 204 when there is none. A repeat with the
    same `request_id` gets the same lease."""
    claimed = service.claim(session, spec)
    if claimed is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    job, token = claimed
    return ClaimedJob.model_validate(
        {**JobOut.model_validate(job).model_dump(), "lease_token": token}
    )


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: IdPath, session: ReadSessionDep, _: ReadToken) -> JobOut:
    """One job: what it measures, its state, lease and result."""
    return JobOut.model_validate(service.get(session, job_id))


@router.post("/{job_id}/heartbeat", response_model=JobOut)
def heartbeat(job_id: IdPath, spec: LeaseIn, session: SessionDep, _: IngestToken) -> JobOut:
    """Extend the lease; 409 lease_lost if it already ran out or was taken over."""
    return JobOut.model_validate(
        service.heartbeat(session, job_id, spec.lease_token, spec.lease_seconds)
    )


@router.post("/{job_id}/complete", response_model=JobOut)
def complete(job_id: IdPath, spec: CompleteIn, session: SessionDep, _: IngestToken) -> JobOut:
    """Finish the job with its result; a repeat with the same lease is answered again.

    A job created with ``fit_after`` then fits the device a new predictor version (a fit that
    cannot be made yet is logged, and the job stays done: its measurements are stored)."""
    job, finished = service.complete(session, job_id, spec.lease_token, spec.result)
    answer = JobOut.model_validate(job)
    device_id = job.claimed_device_id or job.device_id
    if finished and job.fit_after and device_id is not None:
        predictor = predictors.fit_after_job(session, device_id, job.id)
        if predictor is not None:
            predictions.record(session, predictor)
    return answer


@router.post("/{job_id}/fail", response_model=JobOut)
def fail(job_id: IdPath, spec: FailIn, session: SessionDep, _: IngestToken) -> JobOut:
    """Give the job back (retried while attempts remain) or fail it for good."""
    return JobOut.model_validate(
        service.fail(session, job_id, spec.lease_token, spec.reason, spec.retry)
    )
