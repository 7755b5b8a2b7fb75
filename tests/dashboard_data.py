"""A small lab's worth of data for the dashboard tests and screenshots, through the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from models import get_space
from tests.fixtures.factories import HOST_DEVICE, layer_measurement, network_measurement

HISTORY_REPEATS = 6
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Seeded:
    devices: list[int]
    layers: int  # measured layer variants per device
    candidates: int  # searchable (layer, candidate) cells of the space
    history_layer: str
    history_outliers: int
    slowdown: dict[str, float]
    validations: list[int] = field(default_factory=list)
    points: int = 0
    versions: int = 0
    baselines: tuple[str, ...] = ("macs_proportional", "per_op_forest", "table_sum")


def _ok(response: httpx.Response) -> Any:
    if response.status_code not in (200, 201):
        raise AssertionError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


def beside_latency(ms: float) -> dict[str, Any]:
    """Peak memory and energy of a layer of the first phone, growing with its latency."""
    return {
        "peak_memory_bytes": int(4e6 + 2e6 * ms),
        "memory_method": "benchmark_model periodic monitoring",
        "energy_mj": 0.5 * ms,
        "energy_method": "power monitor rails",
    }


def seed(client: httpx.Client, seed_value: int = 0, space: str = "tiny-64") -> Seeded:
    """Two devices measured on ``space``; device 1 with two predictor versions and validations.

    ``client`` must send an admin token. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed_value)
    search_space = get_space(space)
    variants = [str(k) for k in search_space.variants()]
    base = {key: 0.2 + 0.15 * i for i, key in enumerate(variants)}
    # The second phone is slower, more so on some layers than on others.
    slowdown = {key: round(1.3 + 0.6 * ((7 * i) % 10) / 10, 3) for i, key in enumerate(variants)}
    ids = []
    for n, (name, speed) in enumerate((("pixel-7-lab-1", None), ("pixel-6a-lab-2", slowdown))):
        device = _ok(
            client.post("/v1/devices", json={**HOST_DEVICE, "name": name, "threads": n + 1})
        )
        ids.append(int(device["id"]))
        # The first phone also measured peak memory and energy (issue 21's metrics).
        items = [
            layer_measurement(
                k,
                ms * (speed[k] if speed else 1.0),
                measured_at=T0.isoformat(),
                **({} if speed else beside_latency(ms)),
            )
            for k, ms in base.items()
        ]
        _ok(
            client.post(
                "/v1/measurements/layers", json={"device_id": device["id"], "measurements": items}
            )
        )
    first = ids[0]
    # One layer measured again over several days, once while the phone ran hot.
    history_layer = variants[5]
    repeats = []
    for day in range(HISTORY_REPEATS):
        hot = day == 3
        ms = base[history_layer] * (1.45 if hot else 1 + rng.normal(0, 0.004))
        repeats.append(
            layer_measurement(
                history_layer,
                ms,
                measured_at=(T0 + timedelta(days=day + 1)).isoformat(),
                temp_before_c=48.0 if hot else 38.0,
            )
        )
    _ok(client.post("/v1/measurements/layers", json={"device_id": first, "measurements": repeats}))

    def measure(archs: np.ndarray[Any, Any]) -> list[float]:
        table = {k: v for k, v in base.items()}
        truth = [
            1.04 * sum(table[str(k)] for k in search_space.network(list(a)) if k.op.value != "skip")
            + 0.1
            for a in archs.tolist()
        ]
        noisy = [t * (1 + rng.normal(0, 0.02)) for t in truth]
        items = [
            network_measurement(a, ms, space=search_space.name)
            for a, ms in zip(archs.tolist(), noisy, strict=True)
        ]
        _ok(
            client.post(
                "/v1/measurements/networks", json={"device_id": first, "measurements": items}
            )
        )
        return noisy

    seen: set[tuple[int, ...]] = set()

    def fresh(n: int, draw_seed: int) -> np.ndarray[Any, Any]:
        """``n`` distinct architectures never measured before in this seeding."""
        chosen: list[list[int]] = []
        for arch in search_space.sample(50 * n, draw_seed).tolist():
            if tuple(arch) not in seen and len(chosen) < n:
                seen.add(tuple(arch))
                chosen.append(arch)
        return np.asarray(chosen)

    measure(fresh(8, seed_value))
    seeded = Seeded(
        devices=ids,
        layers=len(variants),
        candidates=sum(search_space.candidate_counts),
        history_layer=history_layer,
        history_outliers=1,
        slowdown=slowdown,
    )
    for version_seed in (1, 2):
        fitted = _ok(client.post(f"/v1/devices/{first}/predictors"))
        archs = fresh(12, seed_value + 10 * version_seed)
        measure(archs)
        # The service scores the version on the networks just measured.
        report = _ok(
            client.post(
                f"/v1/devices/{first}/validations",
                json={
                    "predictor_version": fitted["version"],
                    "space": search_space.name,
                    "architectures": archs.tolist(),
                },
            )
        )
        seeded.validations.append(int(report["id"]))
        seeded.points = len(report["points"])
        seeded.versions = int(fitted["version"])
    _ok(client.post(f"/v1/devices/{ids[1]}/predictors"))
    return seeded
