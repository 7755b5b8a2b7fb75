"""``hwlat serve`` as a real process: a restart loses and duplicates nothing; --no-auth rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hwlat.service_process import (
    GRACEFUL_EXIT_CODES,
    ServiceProcess,
    create_token,
    hwlat_env,
)
from tests.fixtures.cli import invoke
from tests.fixtures.factories import LAYER_KEYS, layer_measurement
from tests.fixtures.services import list_layers, register_device

StartServer = Callable[..., ServiceProcess]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start ``hwlat serve`` processes on tmp_path's SQLite; every one is stopped afterwards."""
    servers: list[ServiceProcess] = []

    def start(env: dict[str, str] | None = None, **options: Any) -> ServiceProcess:
        server = ServiceProcess(
            env or hwlat_env(tmp_path), tmp_path / f"serve-{len(servers)}.log", **options
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


def batch(device_id: int, first_median_ms: float, size: int) -> dict[str, Any]:
    """Distinct medians, so that every stored row can be traced back to the item sent."""
    return {
        "device_id": device_id,
        "measurements": [
            layer_measurement(LAYER_KEYS[i % len(LAYER_KEYS)], first_median_ms + 0.01 * i)
            for i in range(size)
        ],
    }


def test_a_restart_loses_and_duplicates_nothing(tmp_path: Path, start_server: StartServer) -> None:
    env = hwlat_env(tmp_path)
    token = create_token(env, "ingest", "restart-agent")
    first = start_server(env)
    with httpx.Client(base_url=first.url, timeout=5) as anonymous:
        assert anonymous.get("/v1/devices").status_code == 401

    with first.client(token) as client:
        device_id = register_device(client)
        batch_1, batch_2 = batch(device_id, 1.0, 25), batch(device_id, 5.0, 30)
        answer_1 = client.post(
            "/v1/measurements/layers", json=batch_1, headers={"Idempotency-Key": "restart-1"}
        )
    assert answer_1.status_code == 201, answer_1.text
    ids_1 = answer_1.json()["ids"]
    assert len(set(ids_1)) == 25

    assert first.stop() in GRACEFUL_EXIT_CODES
    with pytest.raises(httpx.ConnectError), httpx.Client(base_url=first.url) as gone:
        gone.get("/healthz")

    # The same database, the same port: what a device agent configured with a URL would see.
    second = start_server(env, port=first.port)
    with second.client(token) as client:
        # Registration is idempotent across restarts: the agent gets its old device back.
        assert register_device(client) == device_id
        answer_2 = client.post(
            "/v1/measurements/layers", json=batch_2, headers={"Idempotency-Key": "restart-2"}
        )
        retry_1 = client.post(
            "/v1/measurements/layers", json=batch_1, headers={"Idempotency-Key": "restart-1"}
        )
        rows = list_layers(client, device_id, limit=7)

    assert answer_2.status_code == 201, answer_2.text
    ids_2 = answer_2.json()["ids"]
    assert retry_1.status_code == answer_1.status_code
    assert retry_1.json() == answer_1.json()

    sent = dict(zip(ids_1, batch_1["measurements"], strict=True))
    sent.update(zip(ids_2, batch_2["measurements"], strict=True))
    assert len(sent) == 55
    assert [row["id"] for row in rows] == sorted(sent)
    for row in rows:
        item = sent[row["id"]]
        assert (row["layer_key"], row["median_ms"]) == (item["layer_key"], item["median_ms"])


def test_no_auth_refuses_a_public_interface(tmp_path: Path) -> None:
    result = invoke(["serve", "--no-auth", "--host", "0.0.0.0", "--port", "1"], hwlat_env(tmp_path))
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("error: refusing to serve without authentication on 0.0.0.0")
    assert "127.0.0.1" in message
    # Refused before it touched anything: no database was created.
    assert not (tmp_path / "hwlat.db").exists()


def test_no_auth_on_loopback_serves_without_a_token(start_server: StartServer) -> None:
    server = start_server(no_auth=True)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        device_id = register_device(client)
        stored = client.post("/v1/measurements/layers", json=batch(device_id, 2.0, 3), headers={})
        assert stored.status_code == 201, stored.text
        listed = client.get("/v1/measurements/layers", params={"device_id": device_id})
        assert listed.status_code == 200, listed.text
        assert [row["id"] for row in listed.json()["items"]] == stored.json()["ids"]
