"""The BI views return the right rows on SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InternalError, ProgrammingError
from sqlalchemy.orm import Session

from latency_service.devices.tables import Device
from latency_service.jobs.tables import Job
from latency_service.measurements.tables import LayerMeasurement, NetworkMeasurement
from latency_service.predictions.tables import NetworkPrediction
from latency_service.predictors.tables import Predictor
from latency_service.validations.tables import Validation
from models import get_space
from tests.fixtures.factories import HOST_DEVICE, layer_measurement, network_measurement

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TINY = get_space("tiny-64")


def rows(session: Session, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(text(sql), params)]


def add_device(session: Session, name: str = "phone-a") -> Device:
    device = Device(fingerprint=name * 4, **{**HOST_DEVICE, "name": name})
    session.add(device)
    session.flush()
    return device


def add_layer(
    session: Session, device: Device, key: str, median_ms: float, day: int, **over: Any
) -> None:
    body = layer_measurement(key, median_ms, **over)
    body.pop("layer_key")
    session.add(
        LayerMeasurement(
            device_id=device.id, layer_key=key, measured_at=T0 + timedelta(days=day), **body
        )
    )


def test_current_layer_latency_is_the_median_per_device_and_layer(session: Session) -> None:
    a, b = add_device(session, "phone-a"), add_device(session, "phone-b")
    # Odd count: the middle value. Even count: the mean of the two middle ones. Insertion
    # order differs from value order on purpose.
    for day, ms in enumerate([3.0, 1.0, 2.0]):
        add_layer(session, a, "conv_hw64_i3_o16_k3_s2", ms, day)
    for day, ms in enumerate([4.0, 1.0, 10.0, 2.0]):
        add_layer(session, a, "head_hw4_i96_o1280_c1000", ms, day)
    # Neither a rejected attempt nor a drift reference is a value of the layer.
    add_layer(session, a, "conv_hw64_i3_o16_k3_s2", 50.0, 1, accepted=False, rejection="burst")
    add_layer(session, a, "conv_hw64_i3_o16_k3_s2", 0.1, 1, role="reference")
    add_layer(session, b, "conv_hw64_i3_o16_k3_s2", 7.5, 9)
    session.flush()

    found = rows(
        session,
        "SELECT device_id, device_name, layer_key, n_measurements, median_ms, min_ms, max_ms, "
        "last_measured_at FROM v_layer_latency_current ORDER BY device_id, layer_key",
    )
    assert [
        (r["device_name"], r["layer_key"], r["n_measurements"], r["median_ms"]) for r in found
    ] == [
        ("phone-a", "conv_hw64_i3_o16_k3_s2", 3, 2.0),
        ("phone-a", "head_hw4_i96_o1280_c1000", 4, 3.0),
        ("phone-b", "conv_hw64_i3_o16_k3_s2", 1, 7.5),
    ]
    assert (found[1]["min_ms"], found[1]["max_ms"]) == (1.0, 10.0)
    # SQLite hands timestamps back as text, PostgreSQL as timestamptz: both name the last day.
    assert str(found[0]["last_measured_at"]).startswith("2026-03-03 12:00:00")


def add_predictor(session: Session, device: Device, version: int) -> Predictor:
    predictor = Predictor(
        device_id=device.id,
        version=version,
        origin="fit",
        training_sha256="0" * 64,
        library_versions={},
        metrics={},
        artifact="{}",
    )
    session.add(predictor)
    session.flush()
    return predictor


def add_network(session: Session, device: Device, arch: str, median_ms: float) -> int:
    body = network_measurement([int(i) for i in arch.split(",")], median_ms, space="tiny-64")
    body["architecture"] = arch
    row = NetworkMeasurement(device_id=device.id, **body)
    session.add(row)
    session.flush()
    return row.id


def test_network_predictions_pair_each_measurement_with_each_version(session: Session) -> None:
    device = add_device(session)
    v1, v2 = add_predictor(session, device, 1), add_predictor(session, device, 2)
    m1 = add_network(session, device, "0,1,2,3", 10.0)
    m2 = add_network(session, device, "0,1,2,3", 12.0)  # a repeat of the same network
    m3 = add_network(session, device, "4,4,4,4", 5.0)  # predicted by no version
    for predictor, ms in ((v1, 11.0), (v2, 10.5)):
        session.add(
            NetworkPrediction(
                predictor_id=predictor.id,
                device_id=device.id,
                space="tiny-64",
                architecture="0,1,2,3",
                predicted_ms=ms,
                uncertainty_ms=0.1,
            )
        )
    session.flush()

    found = rows(
        session,
        "SELECT measurement_id, architecture, measured_ms, predictor_version, predicted_ms, "
        "error_pct FROM v_network_predictions ORDER BY measurement_id, predictor_version",
    )
    got = [(r["measurement_id"], r["predictor_version"], r["predicted_ms"]) for r in found]
    assert got == [(m1, 1, 11.0), (m1, 2, 10.5), (m2, 1, 11.0), (m2, 2, 10.5), (m3, None, None)]
    assert found[0]["error_pct"] == pytest.approx(10.0)
    assert found[3]["error_pct"] == pytest.approx(100 * (10.5 - 12.0) / 12.0)
    assert found[4]["error_pct"] is None


def test_validation_metrics_list_the_predictor_and_each_baseline(session: Session) -> None:
    device = add_device(session)
    metrics = {"n": 50, "within_5pct": 0.9, "within_10pct": 1.0, "mape": 2.5, "rmse_ms": 0.1}
    metrics |= {"kendall_tau": 0.95}  # no bias_pct: older reports lack it -> NULL
    baselines = {
        "table_sum": {**metrics, "within_5pct": 0.2, "mape": 8.0, "bias_pct": -8.0},
        "macs_proportional": {**metrics, "within_5pct": 0.1, "mape": 20.0, "bias_pct": 1.0},
    }
    for version in (1, 2):
        session.add(
            Validation(
                device_id=device.id,
                predictor_id=add_predictor(session, device, version).id,
                predictor_version=version,
                space="tiny-64",
                n=50,
                metrics={**metrics, "mape": 2.5 / version},
                baselines=baselines,
                details={},
            )
        )
    session.flush()

    found = rows(
        session,
        "SELECT predictor_version, model, n, within_5pct, within_10pct, mape, rmse_ms, "
        "kendall_tau, bias_pct, space FROM v_validation_metrics "
        "ORDER BY predictor_version, model",
    )
    assert [(r["predictor_version"], r["model"], r["mape"]) for r in found] == [
        (1, "macs_proportional", 20.0),
        (1, "predictor", 2.5),
        (1, "table_sum", 8.0),
        (2, "macs_proportional", 20.0),
        (2, "predictor", 1.25),
        (2, "table_sum", 8.0),
    ]
    predictor_v1 = found[1]
    assert predictor_v1["within_5pct"] == pytest.approx(0.9)
    assert predictor_v1["kendall_tau"] == pytest.approx(0.95)
    assert predictor_v1["bias_pct"] is None
    assert found[2]["bias_pct"] == pytest.approx(-8.0)
    assert all(r["n"] == 50 and r["space"] == "tiny-64" for r in found)


def test_job_queue_tells_expired_leases_from_held_ones(session: Session) -> None:
    device = add_device(session)
    now = datetime.now(UTC)

    def job(status: str, **over: Any) -> Job:
        row = Job(kind="profile_layers", device_id=device.id, payload={}, status=status, **over)
        session.add(row)
        return row

    queued = job("queued")
    held = job("leased", lease_owner="rig-1", attempts=1, lease_expires_at=now + timedelta(hours=1))
    expired = job(
        "leased", lease_owner="rig-2", attempts=2, lease_expires_at=now - timedelta(hours=1)
    )
    done = job("done", lease_owner="rig-1", attempts=1, claimed_device_id=device.id)
    failed = job("failed", attempts=3, error="phone unplugged")
    session.flush()

    found = rows(
        session,
        "SELECT job_id, state, agent, attempts, max_attempts, device_id, error "
        "FROM v_job_queue ORDER BY job_id",
    )
    assert [(r["job_id"], r["state"], r["agent"]) for r in found] == [
        (queued.id, "queued", None),
        (held.id, "leased", "rig-1"),
        (expired.id, "lease_expired", "rig-2"),
        (done.id, "done", "rig-1"),
        (failed.id, "failed", None),
    ]
    assert found[4]["error"] == "phone unplugged"
    assert all(r["device_id"] == device.id for r in found)
    by_state = rows(session, "SELECT state, COUNT(*) AS n FROM v_job_queue GROUP BY state")
    assert {r["state"]: r["n"] for r in by_state} == {
        "queued": 1,
        "leased": 1,
        "lease_expired": 1,
        "done": 1,
        "failed": 1,
    }


def test_a_fit_and_a_validation_store_the_service_predictions(
    client: TestClient, tokens: dict[str, dict[str, str]], session: Session
) -> None:
    device = client.post("/v1/devices", json=HOST_DEVICE, headers=tokens["ingest"]).json()["id"]
    table = {str(k): float(i + 1) for i, k in enumerate(TINY.variants())}
    items = [layer_measurement(k, ms) for k, ms in table.items()]
    response = client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    )
    assert response.status_code == 201, response.text

    def measure(archs: list[list[int]]) -> None:
        response = client.post(
            "/v1/measurements/networks",
            json={
                "device_id": device,
                "measurements": [network_measurement(a, 30.0, space="tiny-64") for a in archs],
            },
            headers=tokens["ingest"],
        )
        assert response.status_code == 201, response.text

    calibration = [[0, 0, 0, 0], [1, 1, 1, 1]]
    measure(calibration)
    fitted = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"]).json()
    validation = [[2, 2, 2, 2], [3, 1, 0, 2], [0, 0, 0, 0]]
    measure(validation)
    # The service validates on the networks the fit did not calibrate on (0,0,0,0 it did).
    response = client.post(
        f"/v1/devices/{device}/validations",
        json={
            "predictor_version": fitted["version"],
            "space": "tiny-64",
            "architectures": validation[:2],
        },
        headers=tokens["admin"],
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["points"]) == 2

    expected = client.post(
        "/v1/predict",
        json={"device_id": device, "space": "tiny-64", "architectures": calibration + validation},
        headers=tokens["read"],
    ).json()["latency_ms"]
    want = {
        ",".join(map(str, a)): ms for a, ms in zip(calibration + validation, expected, strict=True)
    }
    found = rows(
        session,
        "SELECT architecture, predictor_version, predicted_ms FROM v_network_predictions "
        "WHERE device_id = :d",
        d=device,
    )
    # Five measurements of four networks (0,0,0,0 twice), each predicted once by version 1:
    # the fit stored the calibration networks, the validation the new ones, nothing twice.
    assert len(found) == 5
    assert {r["predictor_version"] for r in found} == {fitted["version"]}
    for r in found:
        assert r["predicted_ms"] == pytest.approx(want[r["architecture"]])
    stored = rows(
        session, "SELECT COUNT(*) AS n FROM network_predictions WHERE device_id = :d", d=device
    )
    assert stored[0]["n"] == 4


README = Path(__file__).resolve().parents[1] / "README.md"


def documented_role_sql() -> str:
    """The README's read-only role recipe: the block after the ``bi-role`` marker."""
    text = README.read_text()
    start = text.index("```sql", text.index("<!-- bi-role -->")) + len("```sql")
    return text[start : text.index("```", start)]


def test_the_documented_read_only_role_reads_the_views_and_nothing_else(
    database_urls: dict[str, str],
) -> None:
    url = make_url(database_urls["postgresql"])
    role = f"hwlat_bi_{uuid.uuid4().hex[:8]}"
    sql = (
        documented_role_sql()
        .replace("hwlat_bi", role)
        .replace("DATABASE hwlat", f'DATABASE "{url.database}"')
    )
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    reader = create_engine(url.set(username=role, password=None))
    try:
        with admin.connect() as conn:
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(text(statement))
        with reader.connect() as conn:
            for view in (
                "v_layer_latency_current",
                "v_network_predictions",
                "v_validation_metrics",
                "v_job_queue",
            ):
                conn.execute(text(f"SELECT * FROM {view}")).all()
            conn.rollback()
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("SELECT token_hash FROM api_tokens"))
            conn.rollback()
            with pytest.raises(
                (ProgrammingError, InternalError), match=r"read-only|permission denied"
            ):
                conn.execute(text("UPDATE v_job_queue SET attempts = 0"))
    finally:
        reader.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_a_stored_network_the_space_no_longer_admits_costs_only_its_own_prediction(
    client: TestClient, tokens: dict[str, dict[str, str]], session: Session
) -> None:
    device = client.post("/v1/devices", json=HOST_DEVICE, headers=tokens["ingest"]).json()["id"]
    items = [layer_measurement(str(k), float(i + 1)) for i, k in enumerate(TINY.variants())]
    client.post(
        "/v1/measurements/layers",
        json={"device_id": device, "measurements": items},
        headers=tokens["ingest"],
    ).raise_for_status()
    fitted = client.post(f"/v1/devices/{device}/predictors", headers=tokens["admin"]).json()
    # Stored before the space changed: candidate 9 no longer exists at any position.
    for arch in ("0,0,0,0", "9,9,9,9", "1,1,1,1"):
        body = network_measurement([int(c) for c in arch.split(",")], 30.0, space="tiny-64")
        body.pop("architecture")
        session.add(
            NetworkMeasurement(
                device_id=device, architecture=arch, space_sha256=TINY.digest, **body
            )
        )
    session.commit()
    response = client.post(
        f"/v1/devices/{device}/validations",
        json={
            "predictor_version": fitted["version"],
            "space": "tiny-64",
            "architectures": [[0, 0, 0, 0], [1, 1, 1, 1]],
        },
        headers=tokens["admin"],
    )
    assert response.status_code == 201, response.text
    predicted = rows(
        session, "SELECT architecture FROM network_predictions WHERE device_id = :d", d=device
    )
    assert sorted(r["architecture"] for r in predicted) == ["0,0,0,0", "1,1,1,1"]
