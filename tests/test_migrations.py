"""Alembic migrations build exactly the schema the ORM models describe."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from latency_service.db import make_engine
from latency_service.migrate import alembic_config, upgrade
from latency_service.tables import metadata
from models import get_space
from tests.fixtures.databases import FreshDatabase


@pytest.fixture
def fresh_url(backend: str, fresh_database: FreshDatabase) -> str:
    return fresh_database(backend)


def test_migrations_match_the_models(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert set(metadata.tables) <= tables


def test_upgrade_twice_is_harmless(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_tokens (name, token_hash, scope, created_at) "
                    "VALUES ('kept', 'h', 'read', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(fresh_url)
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            kept = conn.execute(text("SELECT name FROM api_tokens")).scalars().all()
    finally:
        engine.dispose()
    assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert kept == ["kept"]


def test_0005_carries_rows_of_the_old_shapes_over(fresh_url: str) -> None:
    upgrade(fresh_url, revision="0004")
    engine = make_engine(fresh_url)
    now = "CURRENT_TIMESTAMP"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO devices (id, fingerprint, name, kind, model, soc, abi, os_version,"
                    " runtime, runtime_version, delegate, threads, precision, affinity_mask,"
                    " governor, extra, created_at) VALUES (1, 'f', 'old', 'host', '', '', '', '',"
                    f" 'litert', '2', 'xnnpack', 1, 'fp32', '', '', '{{}}', {now})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO jobs (id, kind, device_id, selector, payload, settings, status,"
                    " attempts, max_attempts, created_at, updated_at) VALUES (7, 'profile_layers',"
                    " 1, '{}', '{\"layer_keys\": [\"skip_hw8_i8_o8\"]}',"
                    " '{\"num_runs\": 50, \"repeats\": 1}', 'queued', 0, 3,"
                    f" {now}, {now})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO predictors (id, device_id, version, origin, training_sha256,"
                    " library_versions, metrics, artifact, created_at) VALUES"
                    f" (3, 1, 1, 'fit', 'x', '{{}}', '{{}}', '{{}}', {now})"
                )
            )
            for version in (1, 9):  # version 9 was never fitted: the report cannot be kept
                conn.execute(
                    text(
                        "INSERT INTO validations (device_id, predictor_version, space, n, metrics,"
                        f" baselines, details, created_at) VALUES (1, {version}, 'tiny-64', 2,"
                        f" '{{}}', '{{}}', '{{}}', {now})"
                    )
                )
        upgrade(fresh_url)
        with engine.connect() as conn:
            job = conn.execute(text("SELECT payload, selector, timing FROM jobs")).one()
            reports = conn.execute(text("SELECT predictor_id, points FROM validations")).all()
    finally:
        engine.dispose()
    payload, selector, timing = (json.loads(v) if isinstance(v, str) else v for v in job)
    assert payload == {"layer_keys": ["skip_hw8_i8_o8"], "kind": "profile_layers"}
    assert selector is None
    assert timing == {"num_runs": 50, "repeats": 1}
    assert [(r[0], json.loads(r[1]) if isinstance(r[1], str) else r[1]) for r in reports] == [
        (3, [])
    ]


def test_a_database_at_the_landed_0006_gains_the_quality_columns(fresh_url: str) -> None:
    # 0006 (measurements remember their job) shipped before the quality gate; a database
    # stamped there must still get every later column, and its rows count as accepted.
    upgrade(fresh_url, revision="0006")
    engine = make_engine(fresh_url)
    now = "CURRENT_TIMESTAMP"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO devices (id, fingerprint, name, kind, model, soc, abi, os_version,"
                    " runtime, runtime_version, delegate, threads, precision, affinity_mask,"
                    " governor, extra, created_at) VALUES (1, 'f', 'old', 'host', '', '', '', '',"
                    f" 'litert', '2', 'xnnpack', 1, 'fp32', '', '', '{{}}', {now})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO jobs (id, kind, device_id, payload, timing, status, attempts,"
                    " max_attempts, created_at, updated_at) VALUES (7, 'profile_layers', 1,"
                    ' \'{"kind": "profile_layers", "layer_keys": ["skip_hw8_i8_o8"]}\','
                    f" '{{}}', 'done', 1, 3, {now}, {now})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO layer_measurements (id, layer_key, device_id, count, median_ms,"
                    " mean_ms, std_ms, min_ms, max_ms, agent_version, tool_version, measured_at,"
                    " created_at, median_is_average, job_id) VALUES (5, 'skip_hw8_i8_o8', 1, 3,"
                    f" 0.1, 0.1, 0.0, 0.1, 0.1, 'a', 't', {now}, {now}, false, 7)"
                )
            )
        upgrade(fresh_url)
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT job_id, accepted, attempt, role FROM layer_measurements")
            ).one()
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert (row[0], bool(row[1]), row[2], row[3]) == (7, True, 1, "layer")
    assert diff == []


def test_a_database_at_0008_keeps_its_networks_and_validations_valid(fresh_url: str) -> None:
    # Before spaces were data, every network measurement and validation was of a built-in
    # space; 0009 records each built-in spec's hash on them, so fits and validations of today
    # keep using them (a row without the current hash of its space is left out).
    upgrade(fresh_url, revision="0008")
    engine = make_engine(fresh_url)
    now = "CURRENT_TIMESTAMP"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO devices (id, fingerprint, name, kind, model, soc, abi, os_version,"
                    " runtime, runtime_version, delegate, threads, precision, affinity_mask,"
                    " governor, extra, created_at) VALUES (1, 'f', 'old', 'host', '', '', '', '',"
                    f" 'litert', '2', 'xnnpack', 1, 'fp32', '', '', '{{}}', {now})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO network_measurements (id, space, architecture, device_id, count,"
                    " median_ms, mean_ms, std_ms, min_ms, max_ms, agent_version, tool_version,"
                    " measured_at, created_at, median_is_average, accepted, attempt) VALUES"
                    " (3, 'tiny-64', '0,1,2,3', 1, 3, 1.0, 1.0, 0.0, 1.0, 1.0, 'a', 't',"
                    f" {now}, {now}, false, true, 1)"
                )
            )
        upgrade(fresh_url)
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT space_sha256 FROM network_measurements WHERE id = 3")
            ).scalar_one()
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert stored == get_space("tiny-64").digest
    assert diff == []
