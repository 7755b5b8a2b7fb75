"""Alembic migrations build exactly the schema the ORM models describe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from latency_service.db import make_engine
from latency_service.migrate import alembic_config, upgrade
from latency_service.tables import metadata
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


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
