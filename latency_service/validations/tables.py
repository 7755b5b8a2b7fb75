from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from latency_service.db import Base, UtcDateTime, utcnow


class Validation(Base):
    """A predictor version's accuracy on stored network measurements, computed by the service."""

    __tablename__ = "validations"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    predictor_id: Mapped[int] = mapped_column(ForeignKey("predictors.id"), index=True)
    predictor_version: Mapped[int] = mapped_column(Integer)
    space: Mapped[str] = mapped_column(String(100))
    space_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    n: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    baselines: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Per network: architecture, measured and predicted ms (what a scatter plot needs).
    points: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The measurement's agreement with itself across passes (predictor.accuracy.test_retest).
    noise_floor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
