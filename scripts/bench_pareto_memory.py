"""A three-objective Pareto search on this host: accuracy, latency and peak memory.

Run: ``python -m scripts.bench_pareto_memory`` (part of ``make bench``; ~8 minutes on 2 cores).
It starts a service of its own and, with the host agent (LiteRT, XNNPACK, 1 thread):

1. measures every layer variant of the space and ``--n-calibrate`` networks, latency and peak
   memory (``scripts.bench_memory.memory_device``), and fits;
2. runs ``hwlat search pareto``'s search (``nas.runs.pareto_run``) with objectives accuracy,
   latency and memory and a memory limit at the calibration networks' median, against
   ``--trials`` random architectures scored the same way (the hypervolume comparison);
3. measures the front on the device, latency and memory in one job, after the search: how far
   the predicted front is from the device's.

Latency is timed as the accuracy benchmark times it (gate on, 50 runs, 3 passes), since the
front's latency is compared; run it with the machine otherwise idle.

Writes ``docs/bench/pareto_memory.json`` and ``docs/bench/pareto_memory.png``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from hwlat.validate import queue_networks, wait_for_jobs
from latency_api import HwlatClient
from latency_api.schemas.jobs import JobTiming
from models import DEFAULT_SPACE, SearchSpace, get_space
from models.units import BYTES_PER_MB
from nas.latency import ServiceLatencySource
from nas.objectives import Limits, Objective
from nas.one_shot import OneShotConfig
from nas.pareto import ParetoConfig
from nas.plot import plot_fronts
from nas.runs import load_or_train_supernet, pareto_run, scored_trials
from scripts import bench_env
from scripts.bench_memory import MEMORY, memory_device

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "pareto_memory.json"
PLOT = ROOT / "docs" / "bench" / "pareto_memory.png"
OBJECTIVES = (Objective.latency, Objective.memory)
TIMED = JobTiming(warmup_runs=10, num_runs=50, min_secs=0.0, repeats=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--n-calibrate", type=int, default=30)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--supernet-epochs", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space(args.space)
    started = time.monotonic()
    with bench_env.local_service("bench-pareto-memory") as (client, url, token):
        result = _run(client, url, token, space, args)
    result |= {
        "benchmark": "pareto_memory",
        "command": bench_env.command("scripts.bench_pareto_memory"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "torch", "optuna", "ai-edge-litert")),
        "wall_s": time.monotonic() - started,
        "plot": PLOT.name,
    }
    bench_env.write_report(OUT, result)
    from scripts.bench_report import pareto_memory_section

    print("\n".join(pareto_memory_section(result)))
    print(f"\nwrote {OUT} and {PLOT}")


def _run(
    client: HwlatClient, url: str, token: str, space: SearchSpace, args: argparse.Namespace
) -> dict[str, Any]:
    calibration = [[int(c) for c in a] for a in space.sample(args.n_calibrate, args.seed)]
    print(f"[1/3] measuring {space.name}: layers and {len(calibration)} networks, with memory")
    # Latency is compared on the front: timed as the accuracy benchmark times it, gated.
    device_id, agent = memory_device(client, space, calibration, timed=True, timing=TIMED)
    predictor = client.fit_predictor(device_id)
    measured_mb = [
        row.peak_memory_bytes / BYTES_PER_MB
        for row in client.iter_network_measurements(device_id=device_id)
        if row.peak_memory_bytes is not None
    ]
    limits = Limits(max_memory_mb=round(statistics.median(measured_mb), 1))
    print(
        f"[2/3] NSGA-II, {args.trials} trials: accuracy, latency, memory "
        f"(limit {limits.max_memory_mb} MB), against {args.trials} random architectures"
    )
    supernet = load_or_train_supernet(
        space,
        args.resolution,
        OneShotConfig(epochs=args.supernet_epochs, seed=args.seed),
        None,
    )
    config = ParetoConfig(
        trials=args.trials,
        population=args.population,
        seed=args.seed,
        study_name=f"bench-pareto-memory-{args.seed}",
        objectives=OBJECTIVES,
        limits=limits,
    )
    with ServiceLatencySource(url, token) as source:
        report, outcome = pareto_run(
            source, device_id, space, config, supernet, compare_random=args.trials
        )
    plot_fronts(
        PLOT,
        scored_trials(outcome),
        [r.scored() for r in outcome.front],
        OBJECTIVES,
        title=f"{space.name}, host LiteRT: {len(outcome.trials)} trials",
        accuracy_label=f"one-shot accuracy, digits {supernet.resolution} px (proxy)",
        baseline=outcome.random,
        limits=limits,
    )
    front = [list(r.architecture) for r in outcome.front]
    print(f"[3/3] measuring the {len(front)} front architectures: latency and peak memory")
    # Training has ended: let its threads settle before the device is timed.
    time.sleep(10)
    jobs = queue_networks(client, device_id, space, front, TIMED, metrics=MEMORY)
    agent()
    wait_for_jobs(client, jobs, timeout_s=3600)
    latency: dict[tuple[int, ...], list[float]] = {}
    memory: dict[tuple[int, ...], float] = {}
    for row in client.iter_network_measurements(device_id=device_id):
        if row.job_id not in jobs or not row.accepted:
            continue
        arch = tuple(row.architecture)
        latency.setdefault(arch, []).append(row.median_ms)
        if row.peak_memory_bytes is not None:
            memory[arch] = row.peak_memory_bytes / BYTES_PER_MB
    points = []
    for record in outcome.front:
        arch = record.architecture
        measured_ms = statistics.median(latency[arch]) if arch in latency else None
        points.append(
            {
                "architecture": list(arch),
                "accuracy": record.accuracy,
                "predicted_ms": record.latency_ms,
                "measured_ms": measured_ms,
                "predicted_mb": record.peak_memory_mb,
                "measured_mb": memory.get(arch),
            }
        )
    return {
        "space": space.name,
        "space_sha256": space.digest,
        "device": client.get_device(device_id).model_dump(mode="json"),
        "predictor_version": predictor.version,
        "calibration_networks": len(calibration),
        "limits": {"max_memory_mb": limits.max_memory_mb},
        "search": {
            key: report[key]
            for key in ("objectives", "constraints", "units", "trials_in_study", "trials_feasible")
            if key in report
        },
        "hypervolume": report["hypervolume"],
        "front": points,
        "search_wall_s": report["wall_s"],
    }


if __name__ == "__main__":
    main()
