from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Select, delete, func, insert, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from latency_service.measurements.tables import IngestRequest, LayerMeasurement, NetworkMeasurement

MeasurementTable = type[LayerMeasurement] | type[NetworkMeasurement]


def insert_many(session: Session, table: MeasurementTable, rows: list[dict[str, Any]]) -> list[int]:
    """Insert in the session's transaction (all or nothing); the new ids in input order.

    PostgreSQL takes the rows through COPY, with ids drawn from the table's sequence first:
    a batch of 1,000 parsed as one INSERT with 20,000 parameters costs several times more.
    SQLite takes one statement batch (insertmanyvalues).
    """
    if session.get_bind().dialect.name == "postgresql":
        return _copy(session, table, rows)
    result = session.execute(insert(table).returning(table.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _copy(session: Session, table: MeasurementTable, rows: list[dict[str, Any]]) -> list[int]:
    name = table.__tablename__
    connection = session.connection()
    ids = sorted(
        connection.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": name, "n": len(rows)},
        ).scalars()
    )
    id_column = table.__table__.c.id
    columns = [c for c in table.__table__.columns if c is not id_column]
    # Python-side defaults (timestamps, empty strings), which COPY does not apply: evaluated
    # once for the batch, as one upload is stored at one moment.
    fill = {c.name: _default(c) for c in columns}
    names = [c.name for c in columns]
    json_positions = [i + 1 for i, c in enumerate(columns) if isinstance(c.type, JSON)]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name),
        sql.SQL(", ").join(sql.Identifier(n) for n in ["id", *names]),
    )
    raw = connection.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"COPY needs a psycopg connection, not {type(raw).__name__}")
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row_id, row in zip(ids, rows, strict=True):
                values = [row_id, *(row.get(n, fill[n]) for n in names)]
                for i in json_positions:
                    if values[i] is not None:
                        values[i] = Jsonb(values[i])
                copy.write_row(values)
    except psycopg.Error as error:
        # As SQLAlchemy would have raised it, so that a lost connection is still a 503.
        raise DBAPIError.instance("COPY", None, error, psycopg.Error) from error
    return ids


def _default(column: Any) -> Any:
    """The value of the column's Python-side default now; None without one."""
    default = column.default
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


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
    accepted: bool | None = None,
    role: str | None = None,
) -> Sequence[LayerMeasurement | NetworkMeasurement]:
    query: Select[Any] = select(table).where(table.id > after_id).order_by(table.id).limit(limit)
    if accepted is not None:
        query = query.where(table.accepted == accepted)
    if device_id is not None:
        query = query.where(table.device_id == device_id)
    if layer_key is not None and table is LayerMeasurement:
        query = query.where(LayerMeasurement.layer_key == layer_key)
    if role is not None and table is LayerMeasurement:
        query = query.where(LayerMeasurement.role == role)
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
        .where(
            LayerMeasurement.device_id == device_id,
            LayerMeasurement.accepted,
            LayerMeasurement.role == "layer",
        )
        .order_by(LayerMeasurement.layer_key, LayerMeasurement.id)
    ).all()
    return rows


def network_rows(session: Session, device_id: int, space: str | None = None) -> Sequence[Any]:
    """(space, architecture, median_ms, job_id, space_sha256) of every accepted network
    measurement."""
    query = select(
        NetworkMeasurement.space,
        NetworkMeasurement.architecture,
        NetworkMeasurement.median_ms,
        NetworkMeasurement.job_id,
        NetworkMeasurement.space_sha256,
    ).where(NetworkMeasurement.device_id == device_id, NetworkMeasurement.accepted)
    if space is not None:
        query = query.where(NetworkMeasurement.space == space)
    rows: Sequence[Any] = session.execute(query.order_by(NetworkMeasurement.id)).all()
    return rows


def layer_metric_rows(session: Session, device_id: int) -> Sequence[Any]:
    """(layer_key, peak_memory_bytes, energy_mj) of every accepted layer row with either."""
    rows: Sequence[Any] = session.execute(
        select(
            LayerMeasurement.layer_key,
            LayerMeasurement.peak_memory_bytes,
            LayerMeasurement.energy_mj,
        )
        .where(
            LayerMeasurement.device_id == device_id,
            LayerMeasurement.accepted,
            LayerMeasurement.role == "layer",
            or_(
                LayerMeasurement.peak_memory_bytes.is_not(None),
                LayerMeasurement.energy_mj.is_not(None),
            ),
        )
        .order_by(LayerMeasurement.id)
    ).all()
    return rows


def network_metric_rows(session: Session, device_id: int) -> Sequence[Any]:
    """(space, architecture, peak_memory_bytes, energy_mj) of every accepted network row with
    either."""
    rows: Sequence[Any] = session.execute(
        select(
            NetworkMeasurement.space,
            NetworkMeasurement.architecture,
            NetworkMeasurement.peak_memory_bytes,
            NetworkMeasurement.energy_mj,
        )
        .where(
            NetworkMeasurement.device_id == device_id,
            NetworkMeasurement.accepted,
            or_(
                NetworkMeasurement.peak_memory_bytes.is_not(None),
                NetworkMeasurement.energy_mj.is_not(None),
            ),
        )
        .order_by(NetworkMeasurement.id)
    ).all()
    return rows


def latest_method(session: Session, device_id: int, column: str) -> str | None:
    """The newest non-null ``memory_method`` or ``energy_method`` of the device's layer rows."""
    method = getattr(LayerMeasurement, column)
    found: str | None = session.scalar(
        select(method)
        .where(LayerMeasurement.device_id == device_id, method.is_not(None))
        .order_by(LayerMeasurement.id.desc())
        .limit(1)
    )
    return found


def reference_rows(session: Session, device_id: int) -> Sequence[Any]:
    """(layer_key, job_id, median_ms, measured_at) of the device's accepted drift references."""
    rows: Sequence[Any] = session.execute(
        select(
            LayerMeasurement.layer_key,
            LayerMeasurement.job_id,
            LayerMeasurement.median_ms,
            LayerMeasurement.measured_at,
        )
        .where(
            LayerMeasurement.device_id == device_id,
            LayerMeasurement.accepted,
            LayerMeasurement.role == "reference",
        )
        .order_by(LayerMeasurement.id)
    ).all()
    return rows


def count_by_device(session: Session, table: MeasurementTable) -> dict[int, int]:
    rows = session.execute(select(table.device_id, func.count()).group_by(table.device_id)).all()
    return {int(device_id): int(n) for device_id, n in rows}


def drop_job_uploads(session: Session, job_id: int) -> int:
    """Delete what was uploaded under any lease of this job; the number of rows."""
    dropped = 0
    for table in (LayerMeasurement, NetworkMeasurement):
        result = session.execute(delete(table).where(table.job_id == job_id))
        dropped += int(getattr(result, "rowcount", 0) or 0)
    return dropped
