"""``hwlat validate``: a predictor against networks measured end to end, with baselines."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from device_agents.client import ServiceClient
from device_agents.job_specs import job_specs
from hwlat.baselines import macs_proportional, network_macs, nn_meter_forest, table_sum
from hwlat.metrics import accuracy
from models import SearchSpace

JOB_CHUNK = 25


def queue_networks(
    client: ServiceClient,
    device_id: int,
    space: SearchSpace,
    archs: np.ndarray[Any, np.dtype[np.int64]],
    settings: dict[str, Any],
) -> list[int]:
    specs = job_specs(space=space, architectures=archs.tolist(), chunk=JOB_CHUNK)
    return [
        int(client.create_job({**spec, "device_id": device_id, "settings": settings})["id"])
        for spec in specs
    ]


def wait_for_jobs(
    client: ServiceClient, job_ids: list[int], timeout_s: float, poll_s: float = 2.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [client.get_job(i) for i in job_ids]
        if all(j["status"] in ("done", "failed") for j in jobs):
            failed = [j for j in jobs if j["status"] == "failed"]
            if failed:
                raise RuntimeError(
                    f"{len(failed)} measuring job(s) failed, e.g. job {failed[0]['id']}: "
                    f"{failed[0]['error']}"
                )
            return jobs
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"measuring jobs not done after {timeout_s:.0f}s; is an agent running for "
                "this device? (hwlat agent host / hwlat agent android)"
            )
        time.sleep(poll_s)


def network_medians(
    client: ServiceClient, device_id: int, space: SearchSpace, ids: set[int] | None = None
) -> dict[tuple[int, ...], float]:
    """Median of the stored medians per architecture (only rows in ``ids`` if given)."""
    grouped: dict[tuple[int, ...], list[float]] = defaultdict(list)
    for row in client.iter_measurements("networks", device_id=device_id, space=space.name):
        if ids is None or row["id"] in ids:
            grouped[tuple(row["architecture"])].append(row["median_ms"])
    return {arch: float(np.median(v)) for arch, v in grouped.items()}


def validate(
    client: ServiceClient,
    device_id: int,
    space: SearchSpace,
    *,
    n: int,
    seed: int,
    settings: dict[str, Any],
    run_agent: Callable[[], None] | None = None,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Measure ``n`` fresh random architectures, predict them, compare, store the report."""
    started = time.monotonic()
    predictors = client.request("GET", f"/v1/devices/{device_id}/predictors").json()["items"]
    if not predictors:
        raise ValueError(f"device {device_id} has no predictor; run `hwlat fit` first")
    fitted_version = int(predictors[-1]["version"])
    calibration = network_medians(client, device_id, space)  # measured before: the fit saw them
    archs = space.sample(n, seed)
    job_ids = queue_networks(client, device_id, space, archs, settings)
    if run_agent is not None:
        run_agent()
    jobs = wait_for_jobs(client, job_ids, timeout_s)
    stored = {i for job in jobs for i in (job.get("result") or {}).get("ids", [])}
    measured_by_arch = network_medians(client, device_id, space, stored)
    rows = [tuple(int(i) for i in a) for a in archs]
    missing = [a for a in rows if a not in measured_by_arch]
    if missing:
        raise RuntimeError(f"{len(missing)} validation networks have no measurement")
    measured = np.array([measured_by_arch[a] for a in rows])
    answer = client.request(
        "POST",
        "/v1/predict",
        json={
            "device_id": device_id,
            "space": space.name,
            "architectures": [list(a) for a in rows],
        },
    ).json()
    if answer["predictor_version"] != fitted_version:
        raise RuntimeError("the predictor changed while validating; run validate again")
    predicted = np.asarray(answer["latency_ms"])
    layers = {
        row["layer_key"]: row["median_ms"]
        for row in client.request("GET", f"/v1/devices/{device_id}/layers").json()
    }
    cal_archs = [a for a in calibration if a not in set(rows)]
    cal_arr = np.asarray(cal_archs, dtype=np.int64).reshape(len(cal_archs), space.num_layers)
    ms_per_mac = macs_proportional(space, cal_arr, [calibration[a] for a in cal_archs], layers)
    baselines = {
        "macs_proportional": accuracy(ms_per_mac * network_macs(space, archs), measured),
        "table_sum": accuracy(table_sum(space, archs, layers), measured),
        "nn_meter_rf": accuracy(nn_meter_forest(space, archs, layers, seed), measured),
    }
    metrics = accuracy(predicted, measured)
    details = {
        "seed": seed,
        "settings": settings,
        "calibration_networks": len(cal_archs),
        "estimated_layers": len(answer["estimated_layers"]),
        "seconds": time.monotonic() - started,
    }
    client.request(
        "POST",
        f"/v1/devices/{device_id}/validations",
        json={
            "predictor_version": fitted_version,
            "space": space.name,
            "metrics": metrics,
            "baselines": baselines,
            "details": details,
            "points": [
                {"architecture": list(a), "measured_ms": float(m), "predicted_ms": float(p)}
                for a, m, p in zip(rows, measured, predicted, strict=True)
            ],
        },
    )
    return {
        "predictor_version": fitted_version,
        "space": space.name,
        **metrics,
        "baselines": baselines,
        "details": details,
        "layers": layers,
    }


def format_report(report: dict[str, Any]) -> str:
    """A table people can read: the predictor, then every baseline on the same networks."""
    header = f"{'predictor':<28}{'±5%':>8}{'±10%':>8}{'MAPE%':>8}{'RMSE ms':>9}{'τ':>7}"
    lines = [header, "-" * len(header)]
    rows = [(f"hwlat v{report['predictor_version']}", report)]
    rows += list(report["baselines"].items())
    for name, m in rows:
        lines.append(
            f"{name:<28}{100 * m['within_5pct']:>7.1f}%{100 * m['within_10pct']:>7.1f}%"
            f"{m['mape']:>8.2f}{m['rmse_ms']:>9.3f}{m['kendall_tau']:>7.3f}"
        )
    return "\n".join(lines)
