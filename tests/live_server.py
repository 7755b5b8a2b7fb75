"""The service as a real process, for tests: the package's runner plus test-data helpers."""

from __future__ import annotations

from typing import Any

import httpx

from latency_service.process import GRACEFUL_EXIT_CODES as GRACEFUL_EXIT_CODES
from latency_service.process import HOST as HOST
from latency_service.process import ServerFailed as ServerFailed
from latency_service.process import ServiceProcess as LiveServer
from latency_service.process import bearer as bearer
from latency_service.process import create_token as create_token
from latency_service.process import free_port as free_port
from latency_service.process import hwlat_env as hwlat_env
from latency_service.process import run_hwlat as run_hwlat
from tests.service_data import HOST_DEVICE

__all__ = ["LiveServer", "list_layers", "register_device"]


def register_device(client: httpx.Client, **over: Any) -> int:
    response = client.post("/v1/devices", json={**HOST_DEVICE, **over})
    if response.status_code not in (200, 201):
        raise ServerFailed(f"device registration failed: {response.status_code} {response.text}")
    return int(response.json()["id"])


def list_layers(
    client: httpx.Client, device_id: int, limit: int = 1000, role: str = "layer"
) -> list[dict[str, Any]]:
    """Every layer measurement of a device (of one role: the job's layers by default, not the
    drift references around them), following next_cursor to the last page."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"device_id": device_id, "limit": limit, "role": role}
    while True:
        response = client.get("/v1/measurements/layers", params=params)
        if response.status_code != 200:
            raise ServerFailed(f"listing failed: {response.status_code} {response.text}")
        page = response.json()
        rows.extend(page["items"])
        if page["next_cursor"] is None:
            return rows
        params["cursor"] = page["next_cursor"]
