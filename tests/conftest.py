"""Fixtures: real SQLite and PostgreSQL databases, each test inside a rolled-back transaction.

PostgreSQL is not optional: if it cannot be reached the tests that use it fail (in CI too).
Point ``HWLAT_TEST_POSTGRES_URL`` at another server to run elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from latency_api.schemas.enums import Scope
from latency_service.app import create_app
from latency_service.auth.service import create_token
from latency_service.db import make_engine
from latency_service.deps import get_read_session, get_session
from latency_service.migrate import upgrade
from latency_service.settings import Settings

# Re-exported: tests import the helpers from here.
from tests.postgres import POSTGRES_URL as POSTGRES_URL
from tests.postgres import create_postgres_database as create_postgres_database
from tests.postgres import drop_postgres_database as drop_postgres_database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    sqlite_path = tmp_path_factory.mktemp("db") / "hwlat.db"
    pg_url = create_postgres_database()
    urls = {"sqlite": f"sqlite:///{sqlite_path}", "postgresql": pg_url}
    for url in urls.values():
        upgrade(url)
    yield urls
    drop_postgres_database(pg_url)


@pytest.fixture(scope="session")
def engines(database_urls: dict[str, str]) -> Iterator[dict[str, Engine]]:
    engines = {name: make_engine(url) for name, url in database_urls.items()}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connection(engines: dict[str, Engine], backend: str) -> Iterator[Connection]:
    with engines[backend].connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    # Commits inside the code under test release savepoints; the outer transaction is rolled
    # back after the test, so every test starts from the same empty schema.
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, max_batch_items=50)


@pytest.fixture
def client(
    session: Session, settings: Settings, engines: dict[str, Engine], backend: str
) -> Iterator[TestClient]:
    app = create_app(settings, engine=engines[backend])

    def _session() -> Iterator[Session]:
        yield session

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_read_session] = _session
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def tokens(session: Session) -> dict[str, dict[str, str]]:
    """Authorization headers for each scope."""
    return {
        scope.value: {
            "Authorization": f"Bearer {create_token(session, name=scope.value, scope=scope)[1]}"
        }
        for scope in Scope
    }
