from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from latency_service.measurements.tables import IngestRequest, LayerMeasurement, NetworkMeasurement

MeasurementTable = type[LayerMeasurement] | type[NetworkMeasurement]


def insert_many(session: Session, table: MeasurementTable, rows: list[dict[str, Any]]) -> list[int]:
    """Insert in one statement batch (insertmanyvalues), returning ids in input order."""
    result = session.execute(insert(table).returning(table.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def get_ingest_request(session: Session, key: str) -> IngestRequest | None:
    return session.get(IngestRequest, key)


def page(
    session: Session,
    table: MeasurementTable,
    *,
    after_id: int,
    limit: int,
    device_id: int | None = None,
    layer_key: str | None = None,
    space: str | None = None,
) -> Sequence[LayerMeasurement | NetworkMeasurement]:
    query: Select[Any] = select(table).where(table.id > after_id).order_by(table.id).limit(limit)
    if device_id is not None:
        query = query.where(table.device_id == device_id)
    if layer_key is not None and table is LayerMeasurement:
        query = query.where(LayerMeasurement.layer_key == layer_key)
    if space is not None and table is NetworkMeasurement:
        query = query.where(NetworkMeasurement.space == space)
    return session.scalars(query).all()


def iter_all(
    session: Session, table: MeasurementTable, *, batch: int = 5_000, **filters: Any
) -> Iterator[LayerMeasurement | NetworkMeasurement]:
    after_id = 0
    while True:
        rows = page(session, table, after_id=after_id, limit=batch, **filters)
        yield from rows
        if len(rows) < batch:
            return
        after_id = rows[-1].id


def layer_history(session: Session, device_id: int) -> Sequence[Any]:
    rows: Sequence[Any] = session.execute(
        select(
            LayerMeasurement.layer_key,
            LayerMeasurement.id,
            LayerMeasurement.median_ms,
            LayerMeasurement.median_is_average,
            LayerMeasurement.measured_at,
        )
        .where(LayerMeasurement.device_id == device_id)
        .order_by(LayerMeasurement.layer_key, LayerMeasurement.id)
    ).all()
    return rows


def network_rows(session: Session, device_id: int, space: str | None = None) -> Sequence[Any]:
    """(space, architecture, median_ms) of every network measurement of a device."""
    query = select(
        NetworkMeasurement.space, NetworkMeasurement.architecture, NetworkMeasurement.median_ms
    ).where(NetworkMeasurement.device_id == device_id)
    if space is not None:
        query = query.where(NetworkMeasurement.space == space)
    rows: Sequence[Any] = session.execute(query.order_by(NetworkMeasurement.id)).all()
    return rows


def drop_job_uploads(session: Session, job_id: int) -> int:
    """Delete what was uploaded under any lease of this job; the number of rows."""
    dropped = 0
    for table in (LayerMeasurement, NetworkMeasurement):
        result = session.execute(delete(table).where(table.job_id == job_id))
        dropped += int(getattr(result, "rowcount", 0) or 0)
    return dropped
