from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from latency_api.schemas.common import Page
from latency_api.schemas.measurements import (
    DriftOut,
    ExportFormat,
    IngestOut,
    LayerBatchIn,
    LayerCurrent,
    LayerMeasurementOut,
    LayerRole,
    NetworkBatchIn,
    NetworkMeasurementOut,
)
from latency_service.deps import (
    IdFilter,
    IdPath,
    IngestToken,
    ReadSessionDep,
    ReadToken,
    SessionDep,
    SettingsDep,
)
from latency_service.measurements import drift, service
from latency_service.measurements.tables import LayerMeasurement, NetworkMeasurement

router = APIRouter(tags=["measurements"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A retry with the same key and body is answered as the first upload was "
        "and stores nothing twice; the same key with another body is a 409.",
    ),
]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Accepted = Annotated[
    bool | None,
    Query(description="Only measurements the agent's quality gate accepted (true) or rejected"),
]
_MEDIA = {"csv": "text/csv", "json": "application/json"}


@router.post("/v1/measurements/layers", response_model=IngestOut, status_code=201)
def ingest_layers(
    batch: LayerBatchIn,
    session: SessionDep,
    settings: SettingsDep,
    _: IngestToken,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> IngestOut:
    """Store a batch of layer measurements, all or nothing."""
    status, answer = service.ingest(
        session, batch, idempotency_key=idempotency_key, max_items=settings.max_batch_items
    )
    response.status_code = status
    return answer


@router.post("/v1/measurements/networks", response_model=IngestOut, status_code=201)
def ingest_networks(
    batch: NetworkBatchIn,
    session: SessionDep,
    settings: SettingsDep,
    _: IngestToken,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> IngestOut:
    """Store a batch of end-to-end network measurements, all or nothing."""
    status, answer = service.ingest(
        session, batch, idempotency_key=idempotency_key, max_items=settings.max_batch_items
    )
    response.status_code = status
    return answer


@router.get("/v1/measurements/layers", response_model=Page[LayerMeasurementOut])
def list_layers(
    session: ReadSessionDep,
    _: ReadToken,
    device_id: IdFilter = None,
    layer_key: str | None = None,
    accepted: Accepted = None,
    role: Annotated[
        LayerRole | None, Query(description="'layer', or 'reference' (drift references)")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[LayerMeasurementOut]:
    """Stored layer measurements, oldest first, a page at a time."""
    items, next_cursor = service.list_page(
        session,
        LayerMeasurement,
        cursor=cursor,
        limit=limit,
        device_id=device_id,
        layer_key=layer_key,
        accepted=accepted,
        role=role,
    )
    return Page[LayerMeasurementOut](items=items, next_cursor=next_cursor)


@router.get("/v1/measurements/networks", response_model=Page[NetworkMeasurementOut])
def list_networks(
    session: ReadSessionDep,
    _: ReadToken,
    device_id: IdFilter = None,
    space: str | None = None,
    accepted: Accepted = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[NetworkMeasurementOut]:
    """Stored network measurements, oldest first, a page at a time."""
    items, next_cursor = service.list_page(
        session,
        NetworkMeasurement,
        cursor=cursor,
        limit=limit,
        device_id=device_id,
        space=space,
        accepted=accepted,
    )
    return Page[NetworkMeasurementOut](items=items, next_cursor=next_cursor)


@router.get("/v1/measurements/layers/export", response_class=StreamingResponse)
def export_layers(
    session: ReadSessionDep,
    _: ReadToken,
    format: ExportFormat = "csv",
    device_id: IdFilter = None,
) -> StreamingResponse:
    """Every layer measurement (filtered by device) as CSV or JSON."""
    rows = service.export_rows(session, LayerMeasurement, format, device_id=device_id)
    return StreamingResponse(rows, media_type=_MEDIA[format])


@router.get("/v1/measurements/networks/export", response_class=StreamingResponse)
def export_networks(
    session: ReadSessionDep,
    _: ReadToken,
    format: ExportFormat = "csv",
    device_id: IdFilter = None,
) -> StreamingResponse:
    """Every network measurement (filtered by device) as CSV or JSON."""
    rows = service.export_rows(session, NetworkMeasurement, format, device_id=device_id)
    return StreamingResponse(rows, media_type=_MEDIA[format])


@router.get("/v1/devices/{device_id}/layers", response_model=list[LayerCurrent])
def current_layers(device_id: IdPath, session: ReadSessionDep, _: ReadToken) -> list[LayerCurrent]:
    """The current value of every measured layer of a device, outliers flagged."""
    return service.current_layers(session, device_id)


@router.get("/v1/devices/{device_id}/drift", response_model=DriftOut)
def device_drift(device_id: IdPath, session: ReadSessionDep, _: ReadToken) -> DriftOut:
    """How the device's drift reference (timed at the start and end of every job) moved, and
    whether the device counts as drifting."""
    return drift.report(session, device_id)
