"""Concurrent uploads to a multi-worker ``hwlat serve``: every batch stored exactly once.

PostgreSQL is the deployment that gets several workers and many agents; it is required here and
the test fails (it does not skip) when the server cannot be reached. SQLite runs the same load:
it is the embedded default and must stay correct under it, only slower.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from latency_service.db import make_engine
from latency_service.measurements.tables import IngestRequest, LayerMeasurement
from tests.fixtures.cli import invoke
from tests.fixtures.databases import FreshDatabase
from tests.fixtures.factories import LAYER_KEYS, layer_measurement
from tests.fixtures.services import list_layers, register_device

pytestmark = pytest.mark.heavy

THREADS = 8
BATCHES_PER_THREAD = 20
BATCH_SIZE = 50
# Before these batch numbers every thread meets the others at a barrier and all of them send the
# same batch with the same key at once: the race an agent retrying a timed-out upload starts.
SHARED_AT = (0, 7, 14)
REQUEST_TIMEOUT_S = 60.0
TEST_TIMEOUT_S = 240.0

Response = tuple[int, dict[str, Any]]


@pytest.fixture
def database_url(backend: str, fresh_database: FreshDatabase) -> str:
    return fresh_database(backend)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    env = hwlat_env(tmp_path, database_url)
    migrated = invoke(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "is at revision head" in migrated.stdout
    token = create_token(env, "ingest", name="concurrency")
    # Access logs of ~200 requests would only slow the workers down.
    with ServiceProcess(env, tmp_path / "serve.log", workers=2, log_level="warning") as live:
        yield live, token


def medians(seed: int) -> list[float]:
    """Distinct per batch, so that a row stored under the wrong batch is noticed."""
    return [round(1.0 + seed * 0.001 + i * 1e-6, 9) for i in range(BATCH_SIZE)]


def body(device_id: int, seed: int) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "measurements": [
            layer_measurement(LAYER_KEYS[i % len(LAYER_KEYS)], median)
            for i, median in enumerate(medians(seed))
        ],
    }


def run_threads(worker: Callable[[int], None]) -> None:
    pool = ThreadPoolExecutor(THREADS)
    futures = [pool.submit(worker, n) for n in range(THREADS)]
    _, pending = wait(futures, timeout=TEST_TIMEOUT_S)
    # Not a `with` block: its exit would wait for hung threads. Stopping the server in the
    # fixture finaliser makes their requests fail.
    pool.shutdown(wait=not pending, cancel_futures=True)
    assert not pending, f"{len(pending)} client threads did not finish in {TEST_TIMEOUT_S}s"
    errors = [error for f in futures if (error := f.exception()) is not None]
    # A failing thread breaks the barrier for the others; report the cause, not the echo.
    errors.sort(key=lambda error: isinstance(error, threading.BrokenBarrierError))
    if errors:
        raise errors[0]


def test_concurrent_uploads_store_every_batch_exactly_once(
    server: tuple[ServiceProcess, str], database_url: str
) -> None:
    live, token = server
    with live.client(token) as client:
        device_id = register_device(client)

    barrier = threading.Barrier(THREADS, timeout=REQUEST_TIMEOUT_S)
    sent: dict[str, list[float]] = {}  # Idempotency-Key -> medians of its batch
    distinct: dict[str, Response] = {}
    shared: dict[str, list[Response]] = {f"shared-{n}": [] for n in range(len(SHARED_AT))}
    lock = threading.Lock()

    def upload(client: httpx.Client, key: str, seed: int) -> Response:
        response = client.post(
            "/v1/measurements/layers", json=body(device_id, seed), headers={"Idempotency-Key": key}
        )
        content_type = response.headers.get("content-type")
        assert content_type == "application/json", (response.status_code, response.text)
        with lock:
            sent[key] = medians(seed)
        return response.status_code, response.json()

    def worker(thread: int) -> None:
        try:
            send_batches(thread)
        except BaseException:
            # Release the others from the barrier now rather than after its timeout.
            barrier.abort()
            raise

    def send_batches(thread: int) -> None:
        with live.client(token, timeout=REQUEST_TIMEOUT_S) as client:
            for n in range(BATCHES_PER_THREAD):
                if n in SHARED_AT:
                    round_ = SHARED_AT.index(n)
                    barrier.wait()
                    answer = upload(client, f"shared-{round_}", seed=10_000 + round_)
                    with lock:
                        shared[f"shared-{round_}"].append(answer)
                key = f"thread-{thread}-batch-{n}"
                answer = upload(client, key, seed=thread * BATCHES_PER_THREAD + n)
                with lock:
                    distinct[key] = answer

    run_threads(worker)

    for key, (status, answer) in distinct.items():
        assert status == 201, (key, answer)
        assert answer["stored"] == BATCH_SIZE == len(answer["ids"])
    for key, replies in shared.items():
        assert len(replies) == THREADS
        status, first = replies[0]
        assert status == 201, (key, first)
        assert len(first["ids"]) == BATCH_SIZE
        # One stored the batch; the others, whether they lost the race or came later, were
        # answered exactly as it was.
        assert all(reply == replies[0] for reply in replies), key

    # The ids handed out, by key; each id belongs to exactly one batch.
    answers = {key: answer for key, (_, answer) in distinct.items()}
    answers.update({key: replies[0][1] for key, replies in shared.items()})
    expected = {
        row_id: median
        for key, answer in answers.items()
        for row_id, median in zip(answer["ids"], sent[key], strict=True)
    }
    batches = THREADS * BATCHES_PER_THREAD + len(SHARED_AT)
    assert len(answers) == batches
    assert len(expected) == batches * BATCH_SIZE

    with live.client(token, timeout=REQUEST_TIMEOUT_S) as client:
        stored = list_layers(client, device_id)
    assert len(stored) == len(expected)
    assert {row["id"]: row["median_ms"] for row in stored} == expected

    # Straight from the database, past the API: no stray rows, one idempotency record per key.
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(LayerMeasurement))
            keys = conn.scalar(select(func.count()).select_from(IngestRequest))
    finally:
        engine.dispose()
    assert (rows, keys) == (batches * BATCH_SIZE, batches)
