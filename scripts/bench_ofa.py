"""OFA's MobileNetV3 space on this host: a few of its layers measured, chosen, the rest estimated.

Run: ``python -m scripts.bench_ofa`` (part of ``make bench``; ~15 minutes on 2 cores). It starts
a service of its own, registers ``spaces/ofa_mbv3_d234_e346_k357_w1.0.yaml`` and profiles, with
the host agent (LiteRT, quality gate on):

- ``--layers`` of the space's layer variants, the only layers measured; the predictor's layer
  model estimates every other one. ``--choose active`` (the default) has the service choose
  them, ``--step`` at a time, as ``hwlat profile`` does (``POST /v1/devices/{id}/plans``; every
  round's jobs refit the predictor when they complete); ``--choose random`` draws them;
- ``--n-calibrate`` networks for the a·Σ+b calibration (active: the first plan's, spread over
  the predicted latency range; random: drawn);
- ``--configs`` random OFA configs (``ks``, ``e``, ``d`` as OFA's ``sample_active_subnet``
  draws them) each at every resolution of ``--resolutions``, measured end to end and interleaved
  with the calibration networks.

Then it fits on the layers and the calibration networks and has the service validate the
predictor on the others: ±5%, ±10% and MAPE, with the share of their layers that were
estimated. Then, for the budget curve, ``--layers`` more variants drawn at random are measured,
and predictors fitted offline (``predictor.fitting``, the service's fit) on the first 10, 20, 50
and 100 of each sequence, active and random, are scored on the same networks.
Writes ``docs/bench/ofa_mbv3.json`` (``docs/bench/ofa_mbv3_random.json`` with
``--choose random``).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.host import HostBackend
from device_agents.quality import gate_for
from hwlat.pipeline import Timings, host_agent_runner
from hwlat.validate import queue_networks
from latency_api import HwlatClient
from latency_api.schemas.jobs import JobIn, JobTiming, split_payloads
from latency_api.schemas.plans import PlanIn
from latency_api.schemas.predictors import FitIn
from latency_api.schemas.validations import ValidationIn, ValidationOut, ValidationPoint
from models import Op, SearchSpace
from models.ofa_config import to_ofa_config
from models.space_spec import load_spec
from predictor.accuracy import hit_rates
from predictor.artifact import LayerEntry
from predictor.compiled import compile_space
from predictor.fitting import NetworkSample, fit_predictor
from predictor.metrics import ACCURACY, Metric
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spaces" / "ofa_mbv3_d234_e346_k357_w1.0.yaml"
OUT = ROOT / "docs" / "bench" / "ofa_mbv3.json"
PLOT = ROOT / "docs" / "bench" / "ofa_budget_curve.png"


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
    parser.add_argument("--layers", type=int, default=100, help="Layer variants measured.")
    parser.add_argument("--choose", choices=("active", "random"), default="active")
    parser.add_argument("--step", type=int, default=10, help="Active: layers per round.")
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
    with bench_env.local_service("bench-ofa") as (client, _, _):
        result = _run(client, space, args, resolutions)
    result |= {
        "benchmark": "ofa_mbv3",
        "command": bench_env.command("scripts.bench_ofa"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "ai-edge-litert")),
        "wall_s": time.monotonic() - started,
    }
    out = OUT if args.choose == "active" else OUT.with_name("ofa_mbv3_random.json")
    bench_env.write_report(out, result)
    if args.choose == "active":
        plot_budget_curve(PLOT, result["budget_curve"])
    from scripts.bench_report import ofa_section

    print("\n".join(ofa_section(result)))
    print(f"\nwrote {out}")


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
    drawn = [str(variants[i]) for i in rng.permutation(len(variants))]
    layer_timing = JobTiming(warmup_runs=10, num_runs=50, min_secs=0.0, repeats=args.repeats)
    network_timing = JobTiming(warmup_runs=3, num_runs=15, min_secs=0.0, repeats=args.repeats)
    print(
        f"[1/4] profiling {args.layers} of the {len(variants)} layer variants of {space.name}, "
        f"chosen {'by the service' if args.choose == 'active' else 'at random'}"
    )
    calibration: list[list[int]] = []
    if args.choose == "active":
        sequence: list[str] = []
        while len(sequence) < args.layers:
            plan = client.plan(
                device_id,
                PlanIn(
                    space=space.name,
                    layers=min(args.step, args.layers - len(sequence)),
                    networks=0,
                    seed=args.seed,
                    timing=layer_timing,
                ),
            )
            if not plan.layers:
                break
            sequence += [p.layer_key for p in plan.layers]
            agent()
            print(f"  round: {len(sequence)} layers, expected error {plan.expected_mape_pct}")
        first = client.plan(
            device_id,
            PlanIn(
                space=space.name,
                layers=0,
                networks=args.n_calibrate,
                seed=args.seed + 2,
                create_jobs=False,
            ),
        )
        calibration = first.architectures
    else:
        sequence = drawn[: args.layers]
        for payload in split_payloads(layers=sequence, chunk=25):
            client.create_job(JobIn(device_id=device_id, payload=payload, timing=layer_timing))
        agent()
        calibration = [[int(c) for c in a] for a in space.sample(args.n_calibrate, args.seed + 2)]
    layers_s = (timings.export_s, timings.measure_s)

    validation = ofa_configs(space, args.configs, resolutions, args.seed + 1)
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
    curve = _budget_curve(client, device_id, space, agent, sequence, drawn, calibration, report)
    return {
        "space": space.name,
        "space_sha256": space.digest,
        "device": client.get_device(device_id).model_dump(mode="json"),
        "layer_variants": len(variants),
        "choose": args.choose,
        "layers_measured": len(measured_keys & {str(k) for k in variants}),
        "layer_sequence": sequence,
        "budget_curve": curve,
        "calibration_networks": len(calibration),
        "validation_networks": len(measured),
        "validation_networks_without_accepted_measurement": len(validation) - len(measured),
        "resolutions": resolutions,
        "estimated_layer_share_pct": 100 * estimated / len(layers_in_networks),
        "predictor_version": predictor.version,
        "layer_model": predictor.metrics.get("layer_model"),
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


BUDGETS = (10, 20, 50, 100)


def _budget_curve(
    client: HwlatClient,
    device_id: int,
    space: SearchSpace,
    agent: Callable[[], None],
    sequence: list[str],
    drawn: list[str],
    calibration: list[list[int]],
    report: ValidationOut,
) -> dict[str, Any]:
    """Predictors fitted on the first N layers of the chosen sequence, and of a random one
    measured now, scored on the validation's networks (the same calibration networks)."""
    randoms = [k for k in drawn if k not in set(sequence)][: len(sequence)]
    print(f"[budget curve] measuring {len(randoms)} random layer variants to compare with")
    for payload in split_payloads(layers=randoms, chunk=25):
        client.create_job(JobIn(device_id=device_id, payload=payload))
    agent()
    current = {c.layer_key: c.median_ms for c in client.current_layers(device_id)}
    medians: dict[tuple[int, ...], list[float]] = {}
    for m in client.iter_network_measurements(device_id=device_id):
        if m.accepted and m.space == space.name:
            medians.setdefault(tuple(m.architecture), []).append(m.median_ms)
    samples = [
        NetworkSample(tuple(a), float(np.median(medians[tuple(a)])))
        for a in calibration
        if tuple(a) in medians
    ]
    points = report.points
    archs = np.asarray([p.architecture for p in points], dtype=np.int64)
    truth = np.asarray([p.measured_ms for p in points])
    curve: dict[str, Any] = {}
    for name, order in (("active", sequence), ("random", randoms)):
        rows = {}
        for n in (b for b in BUDGETS if b <= len(order)):
            layers = {k: LayerEntry(current[k]) for k in order[:n] if k in current}
            artifact = fit_predictor(layers, {space: samples})
            predicted, _ = compile_space(artifact, space, version=0).predict(archs)
            rows[str(n)] = hit_rates(np.abs(predicted - truth) / truth)
        curve[name] = rows
    return curve


def plot_budget_curve(path: Path, curve: dict[str, Any]) -> None:
    """±5% and ±10% against layers measured, active against random (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, style in (("active", "o-"), ("random", "x--")):
        sizes = [int(n) for n in curve[name]]
        for metric, colour in ((Metric.WITHIN_5PCT, "tab:red"), (Metric.WITHIN_10PCT, "tab:blue")):
            axes.plot(
                sizes,
                [100 * curve[name][str(n)][metric] for n in sizes],
                style,
                color=colour,
                label=f"{name}, within {'±5%' if metric == Metric.WITHIN_5PCT else '±10%'}",
            )
    axes.set_xscale("log")
    axes.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    axes.set_xlabel("layer variants measured (of the space's 1,257)")
    axes.set_ylabel("validation networks (%)")
    axes.set_title("OFA MobileNetV3 on this host: active vs random choice", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


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
