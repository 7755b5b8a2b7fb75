from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from latency_service.db import Base, UtcDateTime, utcnow


class NetworkPrediction(Base):
    """One predictor version's prediction for one measured (space, architecture) of a device.

    Predictions live inside the version's JSON artifact only implicitly; storing them when a
    version is fitted, imported or validated lets SQL (and BI tools) join them to measurements.
    """

    __tablename__ = "network_predictions"
    __table_args__ = (
        UniqueConstraint(
            "predictor_id", "space", "architecture", name="uq_network_predictions_predictor_arch"
        ),
        Index("ix_network_predictions_device_arch", "device_id", "space", "architecture"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    predictor_id: Mapped[int] = mapped_column(ForeignKey("predictors.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    space: Mapped[str] = mapped_column(String(100))
    # Comma-separated candidate indices, spelt as in network_measurements so that they join.
    architecture: Mapped[str] = mapped_column(Text)
    predicted_ms: Mapped[float] = mapped_column(Float)
    uncertainty_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
