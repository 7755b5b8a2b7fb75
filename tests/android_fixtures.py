"""Fixtures of the Android agent tests: an export cache and a live ``hwlat serve``.

Use with ``pytest_plugins = ["tests.emulated_phone.fixtures", "tests.android_fixtures"]`` and
``pytestmark = pytest.mark.usefixtures("export_cache_env")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from latency_api import HwlatClient
from tests.android_helpers import Service
from tests.live_server import LiveServer, create_token, hwlat_env


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the session: a tiny-64 layer takes ~0.3 s to convert."""
    return tmp_path_factory.mktemp("exports")


@pytest.fixture
def export_cache_env(export_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports go to the session's cache (not autouse: plugins' fixtures reach every test)."""
    monkeypatch.setenv("HWLAT_CACHE_DIR", str(export_cache))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``hwlat serve`` on a fresh SQLite store, and an admin token for it."""
    data = tmp_path_factory.mktemp("service")
    env = hwlat_env(data)
    token = create_token(env, "admin")
    with LiveServer(env, data / "serve.log") as server:
        yield server, token


@pytest.fixture
def service_client(service: Service) -> Iterator[HwlatClient]:
    server, token = service
    with HwlatClient(server.url, token, retries=0) as api:
        yield api
