"""OFA's MobileNetV3 space on this host: a sample of its layers measured, the rest estimated.

Run: ``python -m scripts.bench_ofa`` (part of ``make bench``; ~15 minutes on 2 cores). It starts
a service of its own, registers ``spaces/ofa_mbv3_d234_e346_k357_w1.0.yaml`` and profiles, with
the host agent (LiteRT, quality gate on):

- a random sample of the space's layer variants (``--layers``, seeded): the only layers
  measured; the predictor's regression estimates every other one;
- ``--n-calibrate`` random networks for the a·Σ+b calibration;
- ``--configs`` random OFA configs (``ks``, ``e``, ``d`` as OFA's ``sample_active_subnet``
  draws them) each at every resolution of ``--resolutions``, measured end to end and interleaved
  with the calibration networks.

Then it fits on the layers and the calibration networks and has the service validate the
predictor on the others: ±5%, ±10% and MAPE, with the share of their layers that were
estimated. This is the baseline that choosing measurements well (the next issue) must beat.
Writes ``docs/bench/ofa_mbv3.json``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.host import HostBackend
from device_agents.quality import gate_for
from hwlat.pipeline import Timings, host_agent_runner
from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from hwlat.validate import queue_networks
from latency_api import HwlatClient
from latency_api.schemas.jobs import JobIn, JobTiming, split_payloads
from latency_api.schemas.predictors import FitIn
from latency_api.schemas.validations import ValidationIn, ValidationPoint
from models import Op, SearchSpace
from models.ofa_config import to_ofa_config
from models.space_spec import load_spec
from predictor.metrics import ACCURACY
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spaces" / "ofa_mbv3_d234_e346_k357_w1.0.yaml"
OUT = ROOT / "docs" / "bench" / "ofa_mbv3.json"


def ofa_configs(space: SearchSpace, n: int, resolutions: list[int], seed: int) -> list[list[int]]:
    """``n`` random subnets, each at every resolution: OFA draws a kernel and an expansion per
    layer slot and a depth per stage uniformly, which is what sampling every decision but the
    resolution uniformly does."""
    names = [d.name for d in space.decisions]
    at = names.index("resolution")
    labels = space.decisions[at].choices
    archs = space.sample(n, seed)
    out = []
    for arch in archs.tolist():
        for r in resolutions:
            row = list(arch)
            row[at] = labels.index(str(r))
            out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=200, help="Layer variants measured.")
    parser.add_argument("--n-calibrate", type=int, default=40)
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--resolutions", default="128,160,224")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    resolutions = [int(r) for r in args.resolutions.split(",")]
    spec = load_spec(SPEC)
    space = SearchSpace(spec)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        env = hwlat_env(Path(tmp))
        with ServiceProcess(env, Path(tmp) / "service.log", log_level="warning") as server:
            token = create_token(env, "admin", name="bench-ofa")
            with HwlatClient(server.url, token) as client:
                result = _run(client, space, args, resolutions)
    result |= {
        "benchmark": "ofa_mbv3",
        "command": bench_env.command("scripts.bench_ofa"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "ai-edge-litert")),
        "wall_s": time.monotonic() - started,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    bench_env.write_report(OUT, result)
    from scripts.bench_report import ofa_section

    print("\n".join(ofa_section(result)))
    print(f"\nwrote {OUT}")


def _run(
    client: HwlatClient, space: SearchSpace, args: argparse.Namespace, resolutions: list[int]
) -> dict[str, Any]:
    client.register_space(space.spec)
    backend = HostBackend(max_busy_fraction=0.3)
    device_id = client.register_device(backend.describe()).id
    timings = Timings()
    agent = host_agent_runner(client, device_id, backend, timings=timings, gate=gate_for(True))
    variants = list(space.variants())
    rng = np.random.default_rng(args.seed)
    sample = [variants[i] for i in sorted(rng.choice(len(variants), args.layers, replace=False))]
    layer_timing = JobTiming(warmup_runs=10, num_runs=50, min_secs=0.0, repeats=args.repeats)
    network_timing = JobTiming(warmup_runs=3, num_runs=15, min_secs=0.0, repeats=args.repeats)
    print(f"[1/4] profiling {len(sample)} of the {len(variants)} layer variants of {space.name}")
    for payload in split_payloads(layers=sample, chunk=25):
        client.create_job(JobIn(device_id=device_id, payload=payload, timing=layer_timing))
    agent()
    layers_s = (timings.export_s, timings.measure_s)

    validation = ofa_configs(space, args.configs, resolutions, args.seed + 1)
    calibration = [[int(c) for c in a] for a in space.sample(args.n_calibrate, args.seed + 2)]
    mixed = calibration + validation
    random.Random(args.seed).shuffle(mixed)
    print(
        f"[2/4] measuring {len(mixed)} networks end to end ({len(calibration)} to calibrate on, "
        f"{args.configs} OFA configs x {len(resolutions)} resolutions to validate on)"
    )
    queue_networks(client, device_id, space, mixed, network_timing)
    agent()

    print("[3/4] fitting on the sampled layers and the calibration networks")
    predictor = client.fit_predictor(device_id, FitIn(holdout={space.name: validation}))
    accepted = {
        tuple(m.architecture)
        for m in client.iter_network_measurements(device_id=device_id)
        if m.accepted and m.space == space.name
    }
    measured = [a for a in validation if tuple(a) in accepted]
    print(f"[4/4] validating on the {len(measured)} measured OFA configs")
    report = client.validate(
        device_id,
        ValidationIn(space=space.name, predictor_version=predictor.version, architectures=measured),
    )
    measured_keys = {c.layer_key for c in client.current_layers(device_id)}
    layers_in_networks = [str(k) for a in measured for k in space.network(a) if k.op is not Op.SKIP]
    estimated = sum(k not in measured_keys for k in layers_in_networks)
    per_resolution = _per_resolution(space, report.points)
    return {
        "space": space.name,
        "space_sha256": space.digest,
        "device": client.get_device(device_id).model_dump(mode="json"),
        "layer_variants": len(variants),
        "layers_measured": len(measured_keys & {str(k) for k in variants}),
        "calibration_networks": len(calibration),
        "validation_networks": len(measured),
        "validation_networks_without_accepted_measurement": len(validation) - len(measured),
        "resolutions": resolutions,
        "estimated_layer_share_pct": 100 * estimated / len(layers_in_networks),
        "predictor_version": predictor.version,
        "regression": predictor.metrics.get("regression"),
        "validation": {name: report.metrics[name] for name in ACCURACY},
        "per_resolution": per_resolution,
        "noise_floor": report.noise_floor,
        "baselines": {
            name: {m: figures[m] for m in ACCURACY} for name, figures in report.baselines.items()
        },
        "example_config": to_ofa_config(space, measured[0]) if measured else None,
        "profiling_seconds": {
            "layers_export": layers_s[0],
            "layers_measure": layers_s[1],
            "all_export": timings.export_s,
            "all_measure": timings.measure_s,
        },
    }


def _per_resolution(space: SearchSpace, points: list[ValidationPoint]) -> dict[str, Any]:
    from predictor.accuracy import accuracy

    at = [d.name for d in space.decisions].index("resolution")
    labels = space.decisions[at].choices
    grouped: dict[str, tuple[list[float], list[float]]] = {}
    for point in points:
        r = labels[point.architecture[at]]
        predicted, measured = grouped.setdefault(r, ([], []))
        predicted.append(point.predicted_ms)
        measured.append(point.measured_ms)
    return {
        r: {name: accuracy(np.asarray(p), np.asarray(m))[name] for name in ACCURACY}
        for r, (p, m) in sorted(grouped.items(), key=lambda item: int(item[0]))
    }


if __name__ == "__main__":
    main()
