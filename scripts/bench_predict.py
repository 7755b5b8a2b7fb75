"""Prediction speed: in process, a 10,000-architecture batch over HTTP, and concurrent load.

Run: ``python -m scripts.bench_predict`` (``make bench``). Writes ``docs/bench/predict.json``
and prints a markdown table. Every figure is a median over repetitions measured in this run,
and the in-process rate is compared with an OFA-style per-architecture dict-lookup loop
timed in the same run on the same table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from models import DEFAULT_SPACE, SearchSpace, get_space
from models.space_spec import load_spec
from predictor.compiled import compile_space
from predictor.formats import from_spnas
from scripts import bench_env
from scripts.bench_report import predict_section
from scripts.postgres import create_postgres_database, drop_postgres_database

ROOT = Path(__file__).resolve().parents[1]
# The seed's published Pixel 1 table, kept in the repository (the tests read it too).
PIXEL1 = ROOT / "tests" / "data" / "spnas_pixel1_runtime_model.json"
SEED_CONSTANT_MS = 19.5999
OUT = ROOT / "docs" / "bench" / "predict.json"
ELASTIC_SPEC = ROOT / "spaces" / "ofa_mbv3_d234_e346_k357_w1.0.yaml"


def ofa_style_loop(
    space: SearchSpace, table: dict[str, dict[str, float]], archs: np.ndarray[Any, Any]
) -> list[float]:
    """What OFA/ProxylessNAS-style estimators do: per architecture, per layer, build a key
    and look it up in a dict."""
    lut: dict[str, float] = {}
    for position, slot in enumerate(space.layers):
        for c in range(len(slot.candidates)):
            key = str(slot.key(c))
            lut[f"{position}:{key}"] = table[str(position + 1)].get(str(c), 0.0)
    out = []
    for arch in archs.tolist():
        total = SEED_CONSTANT_MS
        for position, choice in enumerate(arch):
            key = str(space.layers[position].key(choice))
            total += lut[f"{position}:{key}"]
        out.append(total)
    return out


def in_process(space: SearchSpace, reps: int) -> dict[str, Any]:
    table = json.loads(PIXEL1.read_text())
    compiled = compile_space(from_spnas(table, space, SEED_CONSTANT_MS), space, version=1)
    archs = space.sample(1_000_000, seed=0)
    rates = []
    for _ in range(reps):
        started = time.perf_counter()
        latency, _ = compiled.predict(archs)
        rates.append(len(archs) / (time.perf_counter() - started))
    few = archs[:20_000]
    loop_rates = []
    for _ in range(reps):
        started = time.perf_counter()
        expected = ofa_style_loop(space, table, few)
        loop_rates.append(len(few) / (time.perf_counter() - started))
    if not np.allclose(expected, latency[: len(few)]):
        raise AssertionError("the compiled predictor and the dict loop disagree")
    fast, slow = statistics.median(rates), statistics.median(loop_rates)
    return {
        "archs_per_s": fast,
        "ofa_loop_archs_per_s": slow,
        "speedup": fast / slow,
        "batch": len(archs),
        "reps": reps,
    }


def over_http(
    space: SearchSpace,
    reps: int,
    load_seconds: float,
    rate: float,
    workers: int,
    backend: str,
    load_runs: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = create_postgres_database() if backend == "postgresql" else None
        try:
            env = hwlat_env(Path(tmp), database_url)
            return _over_http(space, reps, load_seconds, rate, workers, env, load_runs) | {
                "backend": backend
            }
        finally:
            if database_url is not None:
                drop_postgres_database(database_url)


def _over_http(
    space: SearchSpace,
    reps: int,
    load_seconds: float,
    rate: float,
    workers: int,
    env: dict[str, str],
    load_runs: int,
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServiceProcess(
            env, Path(tmp) / "service.log", workers=workers, log_level="warning"
        ) as server,
    ):
        token = create_token(env, "admin", name="bench")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            device = client.post(
                "/v1/devices",
                json={
                    "name": "pixel1-seed",
                    "kind": "android",
                    "model": "Pixel 1",
                    "runtime": "benchmark_model",
                    "runtime_version": "spnas-published",
                },
            ).json()
            client.post(
                f"/v1/devices/{device['id']}/runtime-table",
                params={"space": space.name, "constant_ms": SEED_CONSTANT_MS},
                content=PIXEL1.read_text(),
                headers={"Content-Type": "text/plain"},
            ).raise_for_status()
            body = {
                "device_id": device["id"],
                "space": space.name,
                "architectures": space.sample(10_000, seed=1).tolist(),
            }
            # Encoded once: the client's own JSON encoding of 200,000 numbers is its cost, not
            # the service's answer time.
            payload = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
            client.post("/v1/predict", content=payload, headers=headers).raise_for_status()
            batch_ms = _batch_ms(client, payload, reps)
            client.post("/v1/spaces", json=load_spec(ELASTIC_SPEC).to_dict()).raise_for_status()
            elastic = _elastic_batch(client, reps, measured_share=1 / 3)
            elastic_all = _elastic_batch(client, reps, measured_share=1.0)
        # A tail latency moves with the host's bursts: several runs, the one with the median
        # p99 reported whole, every run's figures kept.
        loads = []
        for _ in range(load_runs):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "scripts.loadgen",
                    "--url",
                    server.url,
                    "--token",
                    token,
                    "--device",
                    str(device["id"]),
                    "--space",
                    space.name,
                    "--rate",
                    str(rate),
                    "--seconds",
                    str(load_seconds),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                timeout=load_seconds + 120,
            )
            loads.append(json.loads(done.stdout))
        load = sorted(loads, key=lambda r: r["p99_ms"])[len(loads) // 2]
    return {
        "batch_10000_ms_median": statistics.median(batch_ms),
        "batch_10000_ms_runs": batch_ms,
        "elastic": elastic
        | {"ratio_to_fixed": elastic["batch_10000_ms_median"] / statistics.median(batch_ms)},
        "elastic_all_measured": elastic_all
        | {"ratio_to_fixed": elastic_all["batch_10000_ms_median"] / statistics.median(batch_ms)},
        "load": {**load, "service_workers": workers},
        "load_runs": [
            {k: r[k] for k in ("achieved_rps", "p50_ms", "p99_ms", "errors")} for r in loads
        ],
    }


def _batch_ms(client: httpx.Client, payload: bytes, reps: int) -> list[float]:
    """Wall time of each of ``reps`` predict requests of one encoded body, after a warm-up."""
    headers = {"Content-Type": "application/json"}
    client.post("/v1/predict", content=payload, headers=headers).raise_for_status()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        response = client.post("/v1/predict", content=payload, headers=headers)
        times.append(1000 * (time.perf_counter() - started))
        response.raise_for_status()
    return times


def _elastic_batch(client: httpx.Client, reps: int, measured_share: float) -> dict[str, Any]:
    """The same batch over OFA's MobileNetV3 space (registered), whose layers' shapes depend
    on the resolution, widths and depths chosen before them: a device with ``measured_share``
    of its layer variants measured (synthetic values; the speed does not depend on them) and
    a fit. The answer lists every layer the regression estimated and counts them per
    architecture, so a partly measured device's answer is larger."""
    space = SearchSpace(load_spec(ELASTIC_SPEC))
    device = client.post(
        "/v1/devices",
        json={
            "name": f"ofa-synthetic-{measured_share:.2f}",
            "kind": "host",
            "runtime": "litert",
            "runtime_version": f"{measured_share:.2f}",
        },
    ).json()
    variants = list(space.variants())
    rng = np.random.default_rng(0)
    size = round(len(variants) * measured_share)
    chosen = rng.choice(len(variants), size=size, replace=False)
    items = [
        {
            "layer_key": str(variants[i]),
            "count": 10,
            "median_ms": ms,
            "mean_ms": ms,
            "std_ms": 0.0,
            "min_ms": ms,
            "max_ms": ms,
        }
        for i in chosen.tolist()
        for ms in [0.01 + 2e-8 * variants[i].macs]
    ]
    for start in range(0, len(items), 500):
        client.post(
            "/v1/measurements/layers",
            json={"device_id": device["id"], "measurements": items[start : start + 500]},
        ).raise_for_status()
    client.post(f"/v1/devices/{device['id']}/predictors").raise_for_status()
    body = {
        "device_id": device["id"],
        "space": space.name,
        "architectures": space.sample(10_000, seed=1).tolist(),
    }
    payload = json.dumps(body).encode()
    times = _batch_ms(client, payload, reps)
    answer = client.post(
        "/v1/predict", content=payload, headers={"Content-Type": "application/json"}
    )
    return {
        "answer_bytes": len(answer.content),
        "space": space.name,
        "decisions": space.num_layers,
        "layer_variants": len(variants),
        "measured_variants": len(items),
        "batch_10000_ms_median": statistics.median(times),
        "batch_10000_ms_runs": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--load-runs", type=int, default=3, help="Load runs; the median is kept.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    space = get_space(DEFAULT_SPACE)
    result: dict[str, Any] = {
        "benchmark": "predict",
        "command": bench_env.command("scripts.bench_predict"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "fastapi", "uvicorn", "httptools")),
        "in_process": in_process(space, args.reps),
        "http": over_http(
            space,
            args.reps,
            args.load_seconds,
            args.rate,
            args.workers,
            args.backend,
            args.load_runs,
        ),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    bench_env.write_report(OUT, result)
    print("\n".join(predict_section(result)))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
