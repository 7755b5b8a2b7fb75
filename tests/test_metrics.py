"""``/metrics`` counts what the service did, across several worker processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from latency_service.app import create_app
from latency_service.settings import Settings
from tests.fixtures.factories import LAYER_KEYS, layer_measurement
from tests.fixtures.services import register_device

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_add_up_requests_served_by_two_workers(tmp_path: Path) -> None:
    env = hwlat_env(tmp_path / "data")
    metrics_dir = tmp_path / "prometheus"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    token = create_token(env, "admin", "metrics-admin")
    server = ServiceProcess(env, tmp_path / "serve.log", workers=2)
    with server, server.client(token) as client:
        device_id = register_device(client)
        # Fresh connections, so that the two workers share the requests between them.
        for _ in range(12):
            with server.client(token) as fresh:
                assert fresh.get(f"/v1/devices/{device_id}").status_code == 200
        assert client.get("/v1/devices/999").status_code == 404
        assert client.get("/no/such/page").status_code == 404
        stored = client.post(
            "/v1/measurements/layers",
            json={
                "device_id": device_id,
                "measurements": [layer_measurement(k) for k in LAYER_KEYS],
            },
        )
        assert stored.status_code == 201, stored.text
        job = {
            "device_id": device_id,
            "payload": {"kind": "profile_layers", "layer_keys": LAYER_KEYS},
        }
        for _ in range(2):
            assert client.post("/v1/jobs", json=job).status_code == 201
        claimed = client.post("/v1/jobs/claim", json={"device_id": device_id, "agent": "rig-7"})
        assert claimed.status_code == 200, claimed.text
        assert client.post("/v1/devices/1/predictors").status_code == 201
        predicted = client.post(
            "/v1/predict",
            json={"device_id": device_id, "layers": [LAYER_KEYS, LAYER_KEYS[:1], LAYER_KEYS[1:]]},
        )
        assert predicted.status_code == 200, predicted.text
        assert list(metrics_dir.glob("*.db")), "the workers keep their metrics in the directory"

        samples = scrape(client)

    route = "/v1/devices/{device_id}"
    assert (
        value(samples, "hwlat_http_requests_total", method="GET", route=route, status="200") == 12
    )
    assert value(samples, "hwlat_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        value(samples, "hwlat_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        value(samples, "hwlat_http_request_duration_seconds_count", method="GET", route=route) == 13
    )
    assert value(samples, "hwlat_ingest_rows_total", kind="layer") == len(LAYER_KEYS)
    assert value(samples, "hwlat_predict_batch_size_count") == 1
    assert value(samples, "hwlat_predict_batch_size_sum") == 3
    assert value(samples, "hwlat_jobs", status="queued") == 1
    assert value(samples, "hwlat_jobs", status="leased") == 1
    assert value(samples, "hwlat_jobs", status="done") == 0
    assert value(samples, "hwlat_agents_seen") == 1
    assert value(samples, "hwlat_agent_last_seen_timestamp_seconds", agent="rig-7") > 0
    # Stopped: the run's files are gone, so the next run does not start from these counts.
    assert not list(metrics_dir.glob("*.db"))


@pytest.mark.parametrize("required", [False, True])
def test_metrics_need_a_token_only_when_configured(tmp_path: Path, required: bool) -> None:
    app = create_app(Settings(data_dir=tmp_path, metrics_require_token=required))
    from latency_service.migrate import upgrade

    upgrade(f"sqlite:///{tmp_path / 'hwlat.db'}")
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == (401 if required else 200)
