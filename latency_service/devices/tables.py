from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from latency_service.db import Base, UtcDateTime, utcnow


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 over every field that changes a measurement; equal settings -> the same device.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200), default="")
    soc: Mapped[str] = mapped_column(String(200), default="")
    abi: Mapped[str] = mapped_column(String(64), default="")
    os_version: Mapped[str] = mapped_column(String(200), default="")
    runtime: Mapped[str] = mapped_column(String(32))
    runtime_version: Mapped[str] = mapped_column(String(64))
    delegate: Mapped[str] = mapped_column(String(16))
    threads: Mapped[int] = mapped_column(Integer)
    precision: Mapped[str] = mapped_column(String(8))
    affinity_mask: Mapped[str] = mapped_column(String(64), default="")
    governor: Mapped[str] = mapped_column(String(64), default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
