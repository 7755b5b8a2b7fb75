from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from latency_service.db import Base, UtcDateTime, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Either one device, or a selector matched against device fields (kind, model, soc, ...).
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), default=None)
    selector: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The discriminated payload as the wire carries it, "kind" included.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Only the timing fields the job set; the agent's defaults fill in the rest.
    timing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # Fit the device's predictor when the job completes (latency_api.schemas.jobs.JobIn).
    fit_after: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    claimed_device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_token: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The agent's id for the claim that leased the job: a retried claim gets the same lease.
    claim_request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The lease that completed or gave the job back, so that a retried complete or fail with it
    # is answered again instead of being refused as a lost lease.
    released_lease_token: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
