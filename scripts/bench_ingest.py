"""Ingest throughput of a real ``hwlat serve`` over HTTP, on SQLite and PostgreSQL.

    .venv/bin/python -m scripts.bench_ingest [--reps 5] [--batch-sizes 1,100,1000]
    .venv/bin/python -m scripts.bench_ingest --agents 20 --workers 2 --backends postgresql \
        --batch-sizes 1000


One client uploads layer-measurement batches back to back (keep-alive, one Idempotency-Key per
batch, as a device agent does) to a one-worker service; a run is a fixed number of batches and
its throughput is measurements stored per second of wall time. Reports the median of the runs.
Writes docs/bench/ingest.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from latency_api import HwlatClient
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.measurements import LAYER_EXAMPLE
from latency_service.db import make_engine
from scripts import bench_env
from scripts.postgres import create_postgres_database, drop_postgres_database, postgres_url

OUT = Path("docs/bench/ingest.json")
# Measurements per run; small batches get fewer so that batch size 1 does not dominate runtime,
# but every run has at least MIN_REQUESTS requests so that one slow request does not decide it.
TARGET_MEASUREMENTS = 3_000
MAX_REQUESTS = 300
MIN_REQUESTS = 5


@dataclass
class Result:
    backend: str
    batch_size: int
    requests_per_run: int
    measurements_per_run: int
    runs_measurements_per_s: list[float]
    median_measurements_per_s: float
    median_request_ms: float


def requests_per_run(batch_size: int) -> int:
    return max(MIN_REQUESTS, min(MAX_REQUESTS, math.ceil(TARGET_MEASUREMENTS / batch_size)))


LAYER_KEYS = [
    "mbconv_hw112_i16_o24_k3_e3_s2",
    "mbconv_hw56_i24_o24_k5_e6_s1",
    "mbconv_hw56_i24_o40_k5_e6_s2",
]
BENCH_DEVICE = DeviceIn.model_validate(
    {
        "name": "bench-host",
        "kind": "host",
        "runtime": "litert",
        "runtime_version": "bench",
        "delegate": "xnnpack",
        "threads": 1,
    }
)


def measurement(key: str, median_ms: float) -> dict[str, Any]:
    """The API's documented example, moved to ``median_ms`` (all statistics scaled with it)."""
    scale = median_ms / float(LAYER_EXAMPLE["median_ms"])  # type: ignore[arg-type]
    body = {
        name: value * scale if name.endswith("_ms") and isinstance(value, float) else value
        for name, value in LAYER_EXAMPLE.items()
    }
    return {**body, "layer_key": key}


def batch_body(device_id: int, batch_size: int, seed: int) -> bytes:
    items = [
        measurement(LAYER_KEYS[i % len(LAYER_KEYS)], 1.0 + seed * 1e-3 + i * 1e-7)
        for i in range(batch_size)
    ]
    return json.dumps({"device_id": device_id, "measurements": items}).encode()


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'hwlat.db'}"
        return
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def bench_backend(backend: str, batch_sizes: list[int], reps: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix=f"bench-ingest-{backend}-") as tmp:
        workdir = Path(tmp)
        with database(backend, workdir) as url:
            env = hwlat_env(workdir, url)
            token = create_token(env, "ingest", name="bench")
            with (
                ServiceProcess(env, workdir / "serve.log", log_level="warning") as server,
                server.client(token, timeout=120) as client,
            ):
                with HwlatClient(server.url, token) as api:
                    device_id = api.register_device(BENCH_DEVICE).id
                seed = 0

                def upload(size: int) -> float:
                    """Seconds for one upload; the body is built before the clock starts."""
                    nonlocal seed
                    seed += 1
                    body = batch_body(device_id, size, seed)
                    headers = {
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"bench-{backend}-{seed}",
                    }
                    start = time.perf_counter()
                    response = client.post("/v1/measurements/layers", content=body, headers=headers)
                    elapsed = time.perf_counter() - start
                    if response.status_code != 201 or response.json()["stored"] != size:
                        raise RuntimeError(f"upload failed: {response.status_code} {response.text}")
                    return elapsed

                results = []
                for size in batch_sizes:
                    upload(size)  # warm-up: first-use costs of this batch size are not throughput
                    n = requests_per_run(size)
                    throughputs, request_s = [], []
                    for _ in range(reps):
                        run = [upload(size) for _ in range(n)]
                        request_s.extend(run)
                        throughputs.append(n * size / sum(run))
                    results.append(
                        Result(
                            backend=backend,
                            batch_size=size,
                            requests_per_run=n,
                            measurements_per_run=n * size,
                            runs_measurements_per_s=[round(t, 1) for t in throughputs],
                            median_measurements_per_s=round(statistics.median(throughputs), 1),
                            median_request_ms=round(1e3 * statistics.median(request_s), 2),
                        )
                    )
                    rate = results[-1].median_measurements_per_s
                    print(f"  {backend:<10} batch {size:>5}: {rate:,.0f} measurements/s")
    return results


def bench_agents(
    backend: str, agents: int, batch_size: int, batches: int, workers: int
) -> dict[str, Any]:
    """``agents`` clients upload ``batches`` batches each at once (threads, keep-alive, one
    Idempotency-Key per batch, bodies encoded before the clock starts); then the stored rows
    are counted and compared with what was sent."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    with tempfile.TemporaryDirectory(prefix=f"bench-agents-{backend}-") as tmp:
        workdir = Path(tmp)
        with database(backend, workdir) as url:
            env = hwlat_env(workdir, url)
            token = create_token(env, "ingest", name="bench")
            with ServiceProcess(
                env, workdir / "serve.log", workers=workers, log_level="warning"
            ) as server:
                with HwlatClient(server.url, token) as api:
                    device_id = api.register_device(BENCH_DEVICE).id
                bodies = [
                    [batch_body(device_id, batch_size, 1_000 * a + b) for b in range(batches)]
                    for a in range(agents)
                ]

                def agent(number: int) -> list[float]:
                    seconds = []
                    headers = {"Authorization": f"Bearer {token}"}
                    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as http:
                        for b, body in enumerate(bodies[number]):
                            started = time.perf_counter()
                            answer = http.post(
                                "/v1/measurements/layers",
                                content=body,
                                headers={
                                    "Content-Type": "application/json",
                                    "Idempotency-Key": f"agent-{number}-{b}",
                                },
                            )
                            seconds.append(time.perf_counter() - started)
                            if answer.status_code != 201:
                                raise RuntimeError(f"{answer.status_code} {answer.text[:300]}")
                    return seconds

                started = time.perf_counter()
                with ThreadPoolExecutor(agents) as pool:
                    request_s = [s for run in pool.map(agent, range(agents)) for s in run]
                wall_s = time.perf_counter() - started
            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    stored = conn.scalar(text("SELECT count(*) FROM layer_measurements"))
            finally:
                engine.dispose()
    sent = agents * batches * batch_size
    result = {
        "backend": backend,
        "agents": agents,
        "service_workers": workers,
        "batch_size": batch_size,
        "batches_per_agent": batches,
        "sent": sent,
        "stored": stored,
        "lost": sent - int(stored or 0),
        "measurements_per_s": round(sent / wall_s, 1),
        "median_request_ms": round(1e3 * statistics.median(request_s), 1),
        "p99_request_ms": round(1e3 * sorted(request_s)[int(0.99 * (len(request_s) - 1))], 1),
    }
    print(f"  {agents} agents, {backend}: {result['measurements_per_s']:,.0f} measurements/s")
    return result


def environment(backends: list[str]) -> dict[str, Any]:
    env = bench_env.environment(("fastapi", "uvicorn", "sqlalchemy", "psycopg"))
    env["sqlite"] = sqlite3.sqlite_version
    if "postgresql" in backends:
        engine = make_engine(postgres_url())
        try:
            with engine.connect() as conn:
                env["postgresql"] = conn.scalar(text("SHOW server_version"))
        finally:
            engine.dispose()
    return env


def markdown(results: list[Result], reps: int) -> str:
    lines = [
        f"| backend | batch size | requests per run | measurements/s (median of {reps}) "
        "| slowest - fastest run | ms per request (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        low, high = min(r.runs_measurements_per_s), max(r.runs_measurements_per_s)
        lines.append(
            f"| {r.backend} | {r.batch_size} | {r.requests_per_run} "
            f"| {r.median_measurements_per_s:,.0f} | {low:,.0f} - {high:,.0f} "
            f"| {r.median_request_ms:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5, help="runs per cell; the median is shown")
    parser.add_argument("--batch-sizes", default="1,100,1000", help="comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--agents", type=int, default=1, help="concurrent uploaders (more than 1: agents mode)"
    )
    parser.add_argument("--workers", type=int, default=1, help="hwlat serve --workers")
    parser.add_argument("--batches", type=int, default=10, help="batches per agent (agents mode)")
    args = parser.parse_args()
    batch_sizes = [int(s) for s in args.batch_sizes.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose sqlite and/or postgresql")

    started = time.monotonic()
    if args.agents > 1:
        runs = [
            bench_agents(backend, args.agents, size, args.batches, args.workers)
            for backend in backends
            for size in batch_sizes
        ]
        out = args.out or OUT.with_name("concurrent_ingest.json")
        report_agents = {
            "benchmark": "concurrent_ingest",
            "command": f"python -m scripts.bench_ingest --agents {args.agents} --workers "
            f"{args.workers} --batches {args.batches} --backends {args.backends} "
            f"--batch-sizes {args.batch_sizes}",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "environment": environment(backends),
            "seconds": round(time.monotonic() - started, 1),
            "results": runs,
        }
        bench_env.write_report(out, report_agents)
        print(f"\n{out}")
        return
    results = [r for backend in backends for r in bench_backend(backend, batch_sizes, args.reps)]
    report = {
        "benchmark": "ingest",
        "command": "python -m scripts.bench_ingest "
        f"--reps {args.reps} --batch-sizes {args.batch_sizes} --backends {args.backends}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": "one client, sequential keep-alive POST /v1/measurements/layers with an "
        "Idempotency-Key per batch; hwlat serve --workers 1 on 127.0.0.1, same host",
        "environment": environment(backends),
        "seconds": round(time.monotonic() - started, 1),
        "results": [asdict(r) for r in results],
    }
    out = args.out or OUT
    bench_env.write_report(out, report)
    print()
    print(markdown(results, args.reps))
    print(f"\n{out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
