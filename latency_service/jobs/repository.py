from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from latency_service.jobs.tables import Job


def claimable(session: Session, now: datetime, *, after_id: int, limit: int) -> Sequence[Job]:
    """Queued jobs and jobs whose lease ran out, oldest first, locked for this transaction.

    On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other's rows;
    SQLite ignores it, but there every write transaction starts with BEGIN IMMEDIATE, so
    claimers are serialised and cannot take the same row either.
    """
    query = (
        select(Job)
        .where(
            Job.id > after_id,
            or_(
                Job.status == "queued",
                (Job.status == "leased") & (Job.lease_expires_at < now),
            ),
        )
        .order_by(Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.scalars(query).all()


def get_for_update(session: Session, job_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id).with_for_update())


def leased_by_request(session: Session, agent: str, request_id: str) -> Job | None:
    """The job a claim with this agent's ``request_id`` leased, if it still holds it."""
    return session.scalar(
        select(Job).where(
            Job.status == "leased", Job.lease_owner == agent, Job.claim_request_id == request_id
        )
    )


def list_jobs(
    session: Session,
    *,
    status: str | None,
    device_id: int | None,
    before_id: int | None,
    limit: int,
) -> Sequence[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Job.id < before_id)
    if status is not None:
        query = query.where(Job.status == status)
    if device_id is not None:
        query = query.where(or_(Job.device_id == device_id, Job.claimed_device_id == device_id))
    return session.scalars(query).all()


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {str(status): int(n) for status, n in rows}


def per_agent(session: Session) -> Sequence[Any]:
    """Per agent that holds or finished jobs: jobs by status, retries, last activity."""
    rows: Sequence[Any] = session.execute(
        select(
            Job.lease_owner.label("agent"),
            func.count().label("jobs"),
            func.sum(case((Job.status == "leased", 1), else_=0)).label("leased"),
            func.sum(case((Job.status == "done", 1), else_=0)).label("done"),
            func.sum(case((Job.status == "failed", 1), else_=0)).label("failed"),
            func.sum(Job.attempts - 1).label("retries"),
            func.max(Job.updated_at).label("last_seen_at"),
        )
        .where(Job.lease_owner.is_not(None))
        .group_by(Job.lease_owner)
        .order_by(Job.lease_owner)
    ).all()
    return rows
