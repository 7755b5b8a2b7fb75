from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.devices.tables import Device


def get(session: Session, device_id: int) -> Device | None:
    return session.get(Device, device_id)


def by_fingerprint(session: Session, fingerprint: str) -> Device | None:
    return session.scalar(select(Device).where(Device.fingerprint == fingerprint))


def list_all(session: Session, *, name: str | None = None) -> Sequence[Device]:
    query = select(Device).order_by(Device.id)
    if name is not None:
        query = query.where(Device.name == name)
    return session.scalars(query).all()
