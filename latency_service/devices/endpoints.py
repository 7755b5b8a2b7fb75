from __future__ import annotations

from fastapi import APIRouter, Response, status

from latency_api.schemas.devices import DeviceIn, DeviceList, DeviceOut
from latency_service.deps import IdPath, IngestToken, ReadSessionDep, ReadToken, SessionDep
from latency_service.devices import service

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post(
    "",
    response_model=DeviceOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DeviceOut, "description": "A device with these settings exists"}},
)
def register_device(
    spec: DeviceIn, session: SessionDep, _: IngestToken, response: Response
) -> DeviceOut:
    """Register a device (hardware + runtime + settings); idempotent on the settings."""
    device, created = service.register(session, spec)
    if not created:
        response.status_code = status.HTTP_200_OK
    return DeviceOut.model_validate(device)


@router.get("", response_model=DeviceList)
def list_devices(session: ReadSessionDep, _: ReadToken, name: str | None = None) -> DeviceList:
    """Every registered device, optionally those with one name."""
    return DeviceList(
        items=[DeviceOut.model_validate(d) for d in service.list_devices(session, name)]
    )


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(device_id: IdPath, session: ReadSessionDep, _: ReadToken) -> DeviceOut:
    """One device: hardware, runtime and settings."""
    return DeviceOut.model_validate(service.get(session, device_id))
