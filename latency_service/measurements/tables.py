from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from latency_api.schemas.measurements import METHOD_CHARS
from latency_service.db import Base, UtcDateTime, utcnow


class _Statistics:
    """Columns shared by layer and network measurements (a mixin, not a table)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"))
    count: Mapped[int] = mapped_column(Integer)
    median_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    std_ms: Mapped[float] = mapped_column(Float)
    min_ms: Mapped[float] = mapped_column(Float)
    max_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float | None] = mapped_column(Float, default=None)
    # The tool printed no median, so median_ms is the average of the runs (old benchmark_model).
    median_is_average: Mapped[bool] = mapped_column(Boolean, default=False)
    samples_ms: Mapped[list[float] | None] = mapped_column(JSON, default=None)
    temp_before_c: Mapped[float | None] = mapped_column(Float, default=None)
    temp_after_c: Mapped[float | None] = mapped_column(Float, default=None)
    frequencies_khz: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    tool_version: Mapped[str] = mapped_column(String(64), default="")
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    # The agent's quality gate: rejected attempts are kept as evidence, never used.
    accepted: Mapped[bool] = mapped_column(Boolean, default=True)
    rejection: Mapped[str | None] = mapped_column(Text, default=None)
    quality: Mapped[dict[str, float] | None] = mapped_column(JSON, default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    pass_index: Mapped[int | None] = mapped_column(Integer, default=None)
    # The job whose lease the upload carried: its passes and its drift reference belong
    # together, and if that lease never completes the rows are dropped when the job is leased
    # again, so a job's work is stored once.
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), default=None, index=True)
    # Metrics beside latency (issue 21), from their own pass; null on rows measured before
    # them and on the repeats that did not carry them.
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    memory_method: Mapped[str | None] = mapped_column(String(METHOD_CHARS), default=None)
    energy_mj: Mapped[float | None] = mapped_column(Float, default=None)
    energy_method: Mapped[str | None] = mapped_column(String(METHOD_CHARS), default=None)
    energy_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class LayerMeasurement(_Statistics, Base):
    __tablename__ = "layer_measurements"
    __table_args__ = (Index("ix_layer_measurements_device_key", "device_id", "layer_key", "id"),)

    layer_key: Mapped[str] = mapped_column(String(200))
    # "layer", or "reference": a job's drift reference, kept out of the layer's values.
    role: Mapped[str] = mapped_column(String(16), default="layer")


class NetworkMeasurement(_Statistics, Base):
    __tablename__ = "network_measurements"
    __table_args__ = (Index("ix_network_measurements_device_space", "device_id", "space", "id"),)

    space: Mapped[str] = mapped_column(String(100))
    # sha256 of the space's spec when measured: networks of two specs are never mixed.
    space_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # Comma-separated candidate indices, the same spelling as `hwlat space sample`.
    architecture: Mapped[str] = mapped_column(Text)


class IngestRequest(Base):
    """What an upload with an ``Idempotency-Key`` was answered, to answer a retry the same."""

    __tablename__ = "ingest_requests"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
