"""Ingest (idempotent, all or nothing), listing, export and current values."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.measurements import (
    IngestOut,
    LayerBatchIn,
    LayerCurrent,
    LayerMeasurementOut,
    NetworkBatchIn,
    NetworkMeasurementOut,
)
from latency_service.devices import service as devices
from latency_service.errors import BatchTooLarge, IdempotencyKeyReused
from latency_service.jobs import service as jobs
from latency_service.measurements import repository
from latency_service.measurements.aggregate import robust_aggregate
from latency_service.measurements.repository import MeasurementTable
from latency_service.measurements.tables import IngestRequest, LayerMeasurement, NetworkMeasurement
from latency_service.metrics.registry import INGEST_ROWS
from latency_service.paging import decode_cursor, encode_cursor
from models import format_architecture, get_space, parse_architecture
from models.spaces import known_space

Batch = LayerBatchIn | NetworkBatchIn


def ingest(
    session: Session,
    batch: Batch,
    *,
    idempotency_key: str | None,
    max_items: int,
) -> tuple[int, IngestOut]:
    """Store a whole batch or nothing; a retry with the same key gets the first answer."""
    if len(batch.measurements) > max_items:
        raise BatchTooLarge(
            f"batch has {len(batch.measurements)} measurements; the limit is {max_items}. "
            "Split it into smaller batches, each with its own Idempotency-Key"
        )
    table: MeasurementTable = (
        LayerMeasurement if isinstance(batch, LayerBatchIn) else NetworkMeasurement
    )
    endpoint = table.__tablename__
    digest = _request_digest(endpoint, batch)
    if idempotency_key is not None:
        replay = _replay(session, idempotency_key, endpoint, digest)
        if replay is not None:
            return replay
    devices.get(session, batch.device_id)
    if batch.job is not None:
        # Checked (and the job row locked) in the same transaction as the insert, so an agent
        # whose lease ran out while it measured cannot store a second copy of the work.
        jobs.held(session, batch.job.id, batch.job.lease_token)
    job_id = batch.job.id if batch.job is not None else None
    # One dump of the whole batch rather than one per item.
    items = batch.model_dump(include={"measurements"}, exclude_none=True)["measurements"]
    rows = [_row(batch.device_id, item, idempotency_key, job_id) for item in items]
    ids = repository.insert_many(session, table, rows)
    answer = IngestOut(stored=len(ids), ids=ids, idempotency_key=idempotency_key)
    if idempotency_key is not None:
        session.add(
            IngestRequest(
                key=idempotency_key,
                endpoint=endpoint,
                request_sha256=digest,
                status_code=201,
                response=answer.model_dump(mode="json"),
            )
        )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # Only the ingest_requests key is unique: a concurrent retry committed first.
        if idempotency_key is None:
            raise
        replay = _replay(session, idempotency_key, endpoint, digest)
        if replay is None:
            raise
        return replay
    INGEST_ROWS.labels(endpoint.removesuffix("_measurements")).inc(len(ids))
    return 201, answer


def _replay(session: Session, key: str, endpoint: str, digest: str) -> tuple[int, IngestOut] | None:
    stored = repository.get_ingest_request(session, key)
    if stored is None:
        return None
    if stored.endpoint != endpoint or stored.request_sha256 != digest:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used for a different upload; "
            "use a new key for new data"
        )
    return stored.status_code, IngestOut.model_validate(stored.response)


def _request_digest(endpoint: str, batch: BaseModel) -> str:
    # pydantic-core's serialisation of the parsed batch: the same for a repeat of the same
    # upload, in a tenth of the time of dumping to Python and json.dumps with sorted keys.
    return hashlib.sha256(endpoint.encode() + b"\n" + batch.model_dump_json().encode()).hexdigest()


def _row(
    device_id: int, row: dict[str, Any], key: str | None, job_id: int | None
) -> dict[str, Any]:
    if "architecture" in row:
        row["architecture"] = format_architecture(row["architecture"])
        # The spec the architecture indexes, so that a changed spec never mixes with it.
        row["space_sha256"] = get_space(row["space"]).digest
    row["device_id"] = device_id
    row["idempotency_key"] = key
    row["job_id"] = job_id
    return row


# -- reading -----------------------------------------------------------------------------------


def list_page(
    session: Session,
    table: MeasurementTable,
    *,
    cursor: str | None,
    limit: int,
    **filters: Any,
) -> tuple[list[Any], str | None]:
    rows = repository.page(
        session, table, after_id=decode_cursor(cursor) or 0, limit=limit, **filters
    )
    items = [_out(table, row) for row in rows]
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit else None
    return items, next_cursor


def _out(table: MeasurementTable, row: Any) -> LayerMeasurementOut | NetworkMeasurementOut:
    if table is LayerMeasurement:
        return LayerMeasurementOut.model_validate(row)
    return NetworkMeasurementOut.model_validate(row)


def export_rows(
    session: Session, table: MeasurementTable, fmt: str, **filters: Any
) -> Iterator[str]:
    """Stream every matching measurement as CSV or as a JSON array, without loading them all."""
    rows = (
        _out(table, row).model_dump(mode="json")
        for row in repository.iter_all(session, table, **filters)
    )
    if fmt == "json":
        yield "["
        for n, row in enumerate(rows):
            yield ("," if n else "") + json.dumps(row)
        yield "]\n"
        return
    out_model = LayerMeasurementOut if table is LayerMeasurement else NetworkMeasurementOut
    columns = list(out_model.model_fields)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        for name in ("samples_ms", "frequencies_khz", "architecture"):
            if name in row and row[name] is not None:
                row[name] = json.dumps(row[name])
        writer.writerow(row)
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def counts_by_device(session: Session) -> dict[int, tuple[int, int]]:
    """(layer, network) measurement counts per device id; devices without any are absent."""
    layers = repository.count_by_device(session, LayerMeasurement)
    networks = repository.count_by_device(session, NetworkMeasurement)
    return {d: (layers.get(d, 0), networks.get(d, 0)) for d in sorted({*layers, *networks})}


def layer_history(session: Session, device_id: int, layer_key: str) -> list[LayerMeasurementOut]:
    """Every stored measurement of one layer on one device (rejected attempts included, drift
    references not), oldest first."""
    devices.get(session, device_id)
    rows = repository.iter_all(
        session, LayerMeasurement, device_id=device_id, layer_key=layer_key, role="layer"
    )
    return [LayerMeasurementOut.model_validate(row) for row in rows]


def current_layers(session: Session, device_id: int) -> list[LayerCurrent]:
    devices.get(session, device_id)
    history = repository.layer_history(session, device_id)
    out = []
    for layer_key, group in groupby(history, key=lambda r: r.layer_key):
        rows: Sequence[Any] = list(group)
        median, mad, outliers = robust_aggregate([r.median_ms for r in rows])
        used = [r for i, r in enumerate(rows) if i not in outliers]
        out.append(
            LayerCurrent(
                layer_key=layer_key,
                median_ms=median,
                n=len(rows),
                n_used=len(rows) - len(outliers),
                spread_pct=100.0 * mad / median,
                outlier_ids=[rows[i].id for i in outliers],
                averages_used=sum(1 for r in used if r.median_is_average),
                last_measured_at=max(r.measured_at for r in rows),
            )
        )
    return out


Architecture = tuple[int, ...]
# (space, architecture as text, median_ms, job_id): one accepted network measurement.
NetworkRow = tuple[str, str, float, int | None]


@dataclass(frozen=True, slots=True)
class NetworkMedian:
    """A network's value over its accepted measurements: the median of their medians."""

    median_ms: float
    n: int
    passes_ms: tuple[float, ...]  # each accepted measurement's median, in the order taken


def network_rows(session: Session, device_id: int, space: str | None = None) -> list[NetworkRow]:
    """(space, architecture, median_ms, job_id) of the device's accepted network measurements,
    read once for :func:`network_medians` to group as often as needed.

    Only rows measured under the spec their space has now: a space is stored with its hash,
    so if a release changed a built-in spec, networks of the old one are never mixed in.
    """
    digests: dict[str, str | None] = {}
    rows = []
    for name, arch, median_ms, job_id, sha256 in repository.network_rows(session, device_id, space):
        if name not in digests:
            digests[name] = get_space(name).digest if known_space(name) else None
        if sha256 == digests[name]:
            rows.append((name, arch, median_ms, job_id))
    return rows


def network_medians(
    rows: Iterable[NetworkRow], job_factors: dict[int, float] | None = None
) -> dict[str, dict[Architecture, NetworkMedian]]:
    """Per space and architecture; repeats of one network count once. With ``job_factors``
    (see :func:`drift.job_factors`), each measurement is first scaled by its job's factor."""
    grouped: dict[str, dict[Architecture, list[float]]] = defaultdict(lambda: defaultdict(list))
    for space_name, arch, median, job_id in rows:
        factor = (job_factors or {}).get(job_id, 1.0) if job_id is not None else 1.0
        grouped[space_name][tuple(parse_architecture(arch))].append(median * factor)
    return {
        name: {
            arch: NetworkMedian(float(np.median(values)), len(values), tuple(values))
            for arch, values in sorted(by_arch.items())
        }
        for name, by_arch in sorted(grouped.items())
    }


@dataclass(frozen=True)
class MetricValues:
    """A device's current value of each metric beside latency: the median of its rows, per
    layer and per (space, architecture)."""

    layers: dict[DeviceMetric, dict[str, float]]
    # Every value of each network, in order: how far its measurements agree with each other.
    network_values: dict[DeviceMetric, dict[str, dict[Architecture, list[float]]]]

    @property
    def networks(self) -> dict[DeviceMetric, dict[str, dict[Architecture, float]]]:
        """The median of each network's values."""
        return {
            m: {
                space: {a: float(np.median(v)) for a, v in by_arch.items()}
                for space, by_arch in by_space.items()
            }
            for m, by_space in self.network_values.items()
        }


_METRIC_COLUMNS = ((DeviceMetric.memory, 0), (DeviceMetric.energy, 1))


def current_metrics(session: Session, device_id: int) -> MetricValues:
    layers: dict[DeviceMetric, dict[str, list[float]]] = {
        m: defaultdict(list) for m in DeviceMetric
    }
    for key, *values in repository.layer_metric_rows(session, device_id):
        for metric, i in _METRIC_COLUMNS:
            if values[i] is not None:
                layers[metric][key].append(float(values[i]))
    networks: dict[DeviceMetric, dict[str, dict[Architecture, list[float]]]] = {
        m: defaultdict(lambda: defaultdict(list)) for m in DeviceMetric
    }
    for space, arch, *values in repository.network_metric_rows(session, device_id):
        for metric, i in _METRIC_COLUMNS:
            if values[i] is not None:
                networks[metric][space][tuple(parse_architecture(arch))].append(float(values[i]))
    return MetricValues(
        layers={m: {k: float(np.median(v)) for k, v in by.items()} for m, by in layers.items()},
        network_values={
            m: {space: dict(by_arch) for space, by_arch in by_space.items()}
            for m, by_space in networks.items()
        },
    )


def latest_metric_methods(session: Session, device_id: int) -> dict[DeviceMetric, str]:
    """How each metric beside latency was last measured on the device (its method string,
    which also says why a metric could not be measured)."""
    found: dict[DeviceMetric, str] = {}
    for metric, column in (
        (DeviceMetric.memory, "memory_method"),
        (DeviceMetric.energy, "energy_method"),
    ):
        method = repository.latest_method(session, device_id, column)
        if method is not None:
            found[metric] = method
    return found
