from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from latency_service.db import Base, UtcDateTime, utcnow


class Predictor(Base):
    __tablename__ = "predictors"
    __table_args__ = (
        UniqueConstraint("device_id", "version", name="uq_predictors_device_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))  # "fit" or "import"
    training_sha256: Mapped[str] = mapped_column(String(64))
    library_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What a fit was fitted on (layer values, calibration networks per space); None for an
    # import. Validation leaves the calibration networks out.
    training: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The artifact as JSON text (schema-versioned): survives library upgrades, unlike a pickle.
    artifact: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
