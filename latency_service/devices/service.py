from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_api.schemas.devices import DeviceIn
from latency_service.devices import repository
from latency_service.devices.tables import Device
from latency_service.errors import NotFound


def register(session: Session, spec: DeviceIn) -> tuple[Device, bool]:
    """Return the device with these settings, creating it if new; the flag says it was new.

    Registering is idempotent so that agents can register at every start.
    """
    fingerprint = spec.fingerprint()
    existing = repository.by_fingerprint(session, fingerprint)
    if existing is not None:
        return existing, False
    device = Device(fingerprint=fingerprint, **spec.model_dump(mode="json"))
    session.add(device)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent registration of the same settings won the race; theirs is ours.
        session.rollback()
        winner = repository.by_fingerprint(session, fingerprint)
        if winner is None:
            raise
        return winner, False
    return device, True


def get(session: Session, device_id: int) -> Device:
    device = repository.get(session, device_id)
    if device is None:
        raise NotFound(f"no device with id {device_id}; list devices with GET /v1/devices")
    return device


def list_devices(session: Session, name: str | None = None) -> Sequence[Device]:
    return repository.list_all(session, name=name)
