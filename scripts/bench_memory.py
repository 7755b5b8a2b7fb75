"""Peak memory on this host: predicted against measured for 200 networks, beside baselines.

Run: ``python -m scripts.bench_memory`` (part of ``make bench``; ~12 minutes on 2 cores). It
starts a service of its own and, with the host agent (LiteRT, XNNPACK, 1 thread):

1. profiles every layer variant of the space with ``--metric memory`` (latency as usual, then
   each layer's peak in a fresh process: ``device_agents.memory``);
2. measures ``--n-calibrate`` random networks and ``--validate`` others, memory too, then fits
   with the validation networks held out;
3. predicts the validation networks' peak memory (``/v1/predict`` with ``metrics=[memory]``)
   and scores it against what was measured, beside three baselines:
   - ``arithmetic``: parameters + the largest layer's activations, fp32 (what one would write
     down);
   - ``sum of layers``: the layers' measured peaks summed, the aggregation latency uses and
     memory must not;
   - ``formula, uncalibrated``: hwlat's model fitted on layers alone, before the networks'
     calibration;
4. measures ``--retest`` validation networks' memory again: the measurement's own noise.

Writes ``docs/bench/memory.json`` and ``docs/bench/memory.png``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.host import HostBackend
from device_agents.quality import gate_for
from hwlat.pipeline import host_agent_runner
from hwlat.validate import queue_networks
from latency_api import HwlatClient
from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.jobs import JobIn, JobTiming, split_payloads
from latency_api.schemas.predictors import FitIn
from latency_api.schemas.validations import MetricValidationIn
from models import DEFAULT_SPACE, SearchSpace, get_space
from models.units import BYTES_PER_MB
from predictor.accuracy import accuracy
from predictor.artifact import PredictorArtifact
from predictor.memory_energy import arithmetic_memory_bytes
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "memory.json"
PLOT = ROOT / "docs" / "bench" / "memory.png"
MEMORY = [DeviceMetric.memory]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--n-calibrate", type=int, default=30)
    parser.add_argument("--validate", type=int, default=200)
    parser.add_argument("--retest", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = get_space(args.space)
    started = time.monotonic()
    with bench_env.local_service("bench-memory") as (client, _, _):
        result = _run(client, space, args)
    result |= {
        "benchmark": "memory",
        "command": bench_env.command("scripts.bench_memory"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "ai-edge-litert")),
        "wall_s": time.monotonic() - started,
        "plot": PLOT.name,
    }
    bench_env.write_report(OUT, result)
    _plot(result)
    from scripts.bench_report import memory_section

    print("\n".join(memory_section(result)))
    print(f"\nwrote {OUT} and {PLOT}")


# Latency is timed only as much as a fit needs: these benchmarks are about memory.
TIMING = JobTiming(warmup_runs=3, num_runs=10, min_secs=0.0, repeats=1)


def memory_device(
    client: HwlatClient,
    space: SearchSpace,
    archs: list[list[int]],
    *,
    timed: bool = False,
    timing: JobTiming = TIMING,
) -> tuple[int, Callable[[], None]]:
    """A host device (LiteRT, XNNPACK, 1 thread) with every layer variant of ``space`` and
    ``archs`` measured, latency and peak memory; its id and its agent.

    A process's high-water mark does not move with the machine's load as a timing does, so by
    default the agent neither waits for quiet nor gates; ``timed`` (latency matters too) turns
    both on, as every agent has them."""
    backend = HostBackend(max_busy_fraction=0.3 if timed else None, use_probe=timed)
    device_id = client.register_device(backend.describe()).id
    agent = host_agent_runner(client, device_id, backend, gate=gate_for(True) if timed else None)
    variants = space.variants()
    print(f"  {len(variants)} layer variants of {space.name}, latency and peak memory")
    for payload in split_payloads(layers=variants, chunk=50, metrics=MEMORY):
        client.create_job(JobIn(device_id=device_id, payload=payload, timing=timing))
    agent()
    print(f"  {len(archs)} networks, latency and peak memory")
    queue_networks(client, device_id, space, archs, timing, metrics=MEMORY)
    agent()
    return device_id, agent


def _run(client: HwlatClient, space: SearchSpace, args: argparse.Namespace) -> dict[str, Any]:
    archs = [[int(c) for c in a] for a in space.sample(args.n_calibrate + args.validate, args.seed)]
    calibration, validation = archs[: args.n_calibrate], archs[args.n_calibrate :]
    print(
        f"[1-2/4] measuring {len(calibration)} calibration and {len(validation)} validation "
        "networks, and every layer variant"
    )
    device_id, agent = memory_device(client, space, archs)
    variants = space.variants()
    measured = _network_memory(client, device_id, space)
    predictor = client.fit_predictor(device_id, FitIn(holdout={space.name: validation}))
    held = [a for a in validation if tuple(a) in measured]
    print(f"[3/4] predicting {len(held)} held-out networks")
    predicted_mb = np.asarray(
        client.predict(device_id, space.name, held, metrics=MEMORY).peak_memory_mb
    )
    artifact = PredictorArtifact.from_dict(
        client.get_predictor(device_id, predictor.version).artifact
    )
    if artifact.memory is None:
        raise RuntimeError("the fit made no memory model: no layer carried a peak")
    nets = [space.network(a) for a in held]
    layer_peaks = _layer_memory(client, device_id)
    truth_mb = np.array([measured[tuple(a)] for a in held]) / BYTES_PER_MB
    candidates = {
        "hwlat": predicted_mb,
        "formula, uncalibrated": artifact.memory.formula_bytes(nets) / BYTES_PER_MB,
        "arithmetic": arithmetic_memory_bytes(nets) / BYTES_PER_MB,
        "sum of layers": np.array(
            [sum(layer_peaks[str(k)] for k in n if str(k) in layer_peaks) for n in nets]
        )
        / BYTES_PER_MB,
    }
    scores = {name: _score(values, truth_mb) for name, values in candidates.items()}
    retest = held[: args.retest]
    print(f"[4/4] measuring the peak memory of {len(retest)} networks again")
    first = {tuple(a): measured[tuple(a)] for a in retest}
    queue_networks(client, device_id, space, retest, TIMING, metrics=MEMORY)
    agent()
    again = _network_memory(client, device_id, space, latest=True)
    retest_rel = [abs(again[a] - first[a]) / first[a] for a in first]
    # The service's own report on the same networks (the retested ones at the median of their
    # two measurements), with the noise floor the retest gives it.
    service = client.validate_metric(
        device_id,
        MetricValidationIn(
            space=space.name,
            metric=DeviceMetric.memory,
            predictor_version=predictor.version,
            architectures=held,
        ),
    )
    memory = artifact.memory
    calibration_line = memory.calibration.get(space.name)
    return {
        "space": space.name,
        "space_sha256": space.digest,
        "device": client.get_device(device_id).model_dump(mode="json"),
        "method": backend_method(client, device_id),
        "layer_variants": len(variants),
        "calibration_networks": len(calibration),
        "validation_networks": len(held),
        "predictor_version": predictor.version,
        "model": {
            "fixed_mb": memory.fixed_bytes / BYTES_PER_MB,
            "per_weight_byte": memory.per_weight_byte,
            "per_live_byte": memory.per_live_byte,
            "layers": memory.n_layers,
            "fit_mape_pct": memory.fit_mape_pct,
            "calibration": None
            if calibration_line is None
            else {
                "a": calibration_line.a,
                "b_mb": calibration_line.b / BYTES_PER_MB,
                "loo_mape_pct": calibration_line.loo_mape_pct,
                "rejected": calibration_line.rejected,
            },
        },
        "measured_mb_range": [float(truth_mb.min()), float(truth_mb.max())],
        "service_validation": service.model_dump(mode="json", exclude={"points"}),
        "scores": scores,
        "retest": {
            "networks": len(retest_rel),
            "mape_pct": float(100 * np.mean(retest_rel)),
            "max_pct": float(100 * np.max(retest_rel)),
        },
        "points": [
            {
                "architecture": a,
                "measured_mb": float(t),
                **{k: float(v[i]) for k, v in candidates.items()},
            }
            for i, (a, t) in enumerate(zip(held, truth_mb, strict=True))
        ],
    }


def backend_method(client: HwlatClient, device_id: int) -> str:
    """How the stored peaks were measured, as the agent recorded it."""
    for row in client.iter_layer_measurements(device_id=device_id):
        if row.memory_method:
            return row.memory_method
    raise RuntimeError("no layer row carries a peak memory")


def _network_memory(
    client: HwlatClient, device_id: int, space: SearchSpace, latest: bool = False
) -> dict[tuple[int, ...], float]:
    """Peak bytes per measured network: its first measurement (``latest``: its last)."""
    found: dict[tuple[int, ...], float] = {}
    for row in client.iter_network_measurements(device_id=device_id):
        if row.space != space.name or row.peak_memory_bytes is None:
            continue
        arch = tuple(row.architecture)
        if latest or arch not in found:
            found[arch] = float(row.peak_memory_bytes)
    return found


def _layer_memory(client: HwlatClient, device_id: int) -> dict[str, float]:
    return {
        row.layer_key: float(row.peak_memory_bytes)
        for row in client.iter_layer_measurements(device_id=device_id)
        if row.peak_memory_bytes is not None and row.role == "layer"
    }


def _score(predicted_mb: np.ndarray, measured_mb: np.ndarray) -> dict[str, Any]:
    figures = accuracy(predicted_mb, measured_mb)
    figures.pop("rmse_ms")
    figures["rmse_mb"] = float(np.sqrt(np.mean((predicted_mb - measured_mb) ** 2)))
    return {str(k): v for k, v in figures.items()}


def _plot(result: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = result["points"]
    measured = np.array([p["measured_mb"] for p in points])
    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for name, marker in (("hwlat", "o"), ("formula, uncalibrated", "x")):
        axes[0].scatter(measured, [p[name] for p in points], s=12, marker=marker, label=name)
    low, high = measured.min() * 0.95, measured.max() * 1.05
    axes[0].plot([low, high], [low, high], "k--", lw=1)
    axes[0].fill_between([low, high], [low * 0.9, high * 0.9], [low * 1.1, high * 1.1], alpha=0.1)
    axes[0].set(xlabel="measured peak MB", ylabel="predicted peak MB", title="hwlat (±10% band)")
    axes[0].legend()
    for name, marker in (("arithmetic", "s"), ("sum of layers", "^")):
        axes[1].scatter(measured, [p[name] for p in points], s=10, marker=marker, label=name)
    axes[1].plot([low, high], [low, high], "k--", lw=1)
    axes[1].set(xlabel="measured peak MB", ylabel="baseline MB", title="baselines", yscale="log")
    axes[1].legend()
    fig.suptitle(f"Peak memory of {len(points)} held-out networks of {result['space']}")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


if __name__ == "__main__":
    main()
