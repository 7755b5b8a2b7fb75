"""FiGS on this host: three latency targets landed and measured, and FLOPs against latency.

Run: ``python -m scripts.bench_figs`` (part of ``make bench``; ~12 minutes on 2 cores). It
starts a service of its own, registers ``spaces/figs-mbv2-224.yaml`` and, with the host agent
(LiteRT, quality gate on):

1. profiles ``--layers`` of the space's layer variants chosen by the service (``POST
   /v1/devices/{id}/plans``, ``--step`` at a time) and ``--n-calibrate`` networks spread over
   the predicted range, then fits;
2. measures ``--validate`` random networks end to end, held out of the fit, and has the service
   validate the predictor on them (the search can land no closer than this);
3. fetches the device's channel cost (``GET /v1/devices/{id}/channel-cost``), checks that it
   equals ``/v1/predict`` at architectures and that its gradient matches finite differences;
4. runs ``hwlat search figs``'s search (``nas.runs.figs_run``, FLOPs twin on) for three targets
   at 25%, 50% and 75% of the space's predicted range, then measures every searched
   architecture in one job, after the training has ended (a measurement beside torch's training
   threads is a measurement of both), with ``--remeasure`` validation networks measured again
   in the same job: whether the device has drifted since the predictor was fitted;
5. shows where FLOPs mis-price the device: the predicted ms per MFLOP of each layer.

Writes ``docs/bench/figs.json`` and ``docs/bench/figs_channels.png`` (``--no-xnnpack``: the same
on LiteRT's built-in kernels, ``figs_builtin.*``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from device_agents.host import HostBackend
from device_agents.quality import gate_for
from hwlat.pipeline import Timings, host_agent_runner
from hwlat.validate import queue_networks
from latency_api import HwlatClient
from latency_api.schemas.jobs import JobTiming
from latency_api.schemas.plans import PlanIn
from latency_api.schemas.predictors import FitIn
from latency_api.schemas.validations import ValidationIn
from models import SearchSpace
from models.space_spec import load_spec
from nas.channel_cost import ChannelCostModule
from nas.figs import FigsConfig, cost_range
from nas.latency import ServiceLatencySource
from nas.plot import plot_channels
from nas.runs import figs_run
from predictor.channel_cost import flop_cost
from predictor.metrics import ACCURACY
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spaces" / "figs-mbv2-224.yaml"
OUT = ROOT / "docs" / "bench" / "figs.json"
PLOT = ROOT / "docs" / "bench" / "figs_channels.png"
TARGET_FRACTIONS = (0.25, 0.5, 0.75)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--n-calibrate", type=int, default=30)
    parser.add_argument("--validate", type=int, default=40)
    parser.add_argument(
        "--remeasure",
        type=int,
        default=10,
        help="Validation networks measured again in the final job, beside the searched ones: "
        "how far the device drifted since the predictor was fitted",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-xnnpack",
        action="store_true",
        help="LiteRT's built-in kernels: a device whose cost per FLOP varies more by layer "
        "(writes docs/bench/figs_builtin.json and figs_builtin_channels.png)",
    )
    args = parser.parse_args()
    out, plot = OUT, PLOT
    if args.no_xnnpack:
        out = OUT.with_name("figs_builtin.json")
        plot = PLOT.with_name("figs_builtin_channels.png")
    space = SearchSpace(load_spec(SPEC))
    started = time.monotonic()
    with bench_env.local_service("bench-figs") as (client, url, token):
        result = _run(client, url, token, space, args)
    result |= {
        "benchmark": "figs",
        "command": bench_env.command("scripts.bench_figs"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "torch", "ai-edge-litert")),
        "wall_s": time.monotonic() - started,
    }
    result["plot"] = plot.name
    bench_env.write_report(out, result)
    searches = result["searches"]
    middle = searches[len(searches) // 2]
    plot_channels(
        plot,
        [d["name"] for d in middle["decisions"]],
        [d["max_channels"] for d in middle["decisions"]],
        [
            (
                f"latency-driven ({middle['result']['measured_ms']:.1f} ms measured)",
                middle["result"]["channels"],
            ),
            (
                f"FLOPs-driven, same FLOPs ({middle['flops_twin']['measured_ms']:.1f} ms)",
                middle["flops_twin"]["channels"],
            ),
        ],
        title=f"FiGS on {space.name}, host LiteRT: target {middle['result']['target_ms']:.1f} ms",
    )
    from scripts.bench_report import figs_section

    print("\n".join(figs_section(result)))
    print(f"\nwrote {out} and {plot}")


def _run(
    client: HwlatClient, url: str, token: str, space: SearchSpace, args: argparse.Namespace
) -> dict[str, Any]:
    client.register_space(space.spec)
    backend = HostBackend(max_busy_fraction=0.3, use_xnnpack=not args.no_xnnpack)
    device_id = client.register_device(backend.describe()).id
    timings = Timings()
    agent = host_agent_runner(client, device_id, backend, timings=timings, gate=gate_for(True))
    layer_timing = JobTiming(warmup_runs=10, num_runs=50, min_secs=0.0, repeats=args.repeats)
    network_timing = JobTiming(warmup_runs=3, num_runs=15, min_secs=0.0, repeats=args.repeats)
    variants = space.variants()
    print(f"[1/5] profiling {args.layers} of the {len(variants)} layer variants of {space.name}")
    chosen = 0
    while chosen < args.layers:
        plan = client.plan(
            device_id,
            PlanIn(
                space=space.name,
                layers=min(args.step, args.layers - chosen),
                networks=0,
                seed=args.seed,
                timing=layer_timing,
            ),
        )
        if not plan.layers:
            break
        chosen += len(plan.layers)
        agent()
        print(f"  {chosen} layers, expected network error {plan.expected_mape_pct}")
    calibration = client.plan(
        device_id,
        PlanIn(
            space=space.name,
            layers=0,
            networks=args.n_calibrate,
            seed=args.seed + 1,
            create_jobs=False,
        ),
    ).architectures
    validation = [[int(c) for c in a] for a in space.sample(args.validate, args.seed + 2)]
    print(
        f"[2/5] measuring {len(calibration)} calibration and {len(validation)} validation "
        "networks end to end"
    )
    queue_networks(client, device_id, space, calibration + validation, network_timing)
    agent()
    predictor = client.fit_predictor(device_id, FitIn(holdout={space.name: validation}))
    accepted = {
        tuple(m.architecture)
        for m in client.iter_network_measurements(device_id=device_id)
        if m.accepted and m.space == space.name
    }
    measured_validation = [a for a in validation if tuple(a) in accepted]
    report = client.validate(
        device_id,
        ValidationIn(
            space=space.name, predictor_version=predictor.version, architectures=measured_validation
        ),
    )
    print("[3/5] the channel cost: equal to /v1/predict, gradient against finite differences")
    cost = client.channel_cost(device_id, space.name)
    module = ChannelCostModule(cost)
    low, high = cost_range(module)
    checks = _checks(client, device_id, space, module)
    targets = [round(low + f * (high - low), 2) for f in TARGET_FRACTIONS]
    print(f"[4/5] FiGS to {targets} ms (range {low:.2f}-{high:.2f} ms), each with its FLOPs twin")
    searches = []
    with ServiceLatencySource(url, token) as source:
        for target in targets:
            config = FigsConfig(target=target, epochs=args.epochs, seed=args.seed, threads=2)
            started = time.monotonic()
            run = figs_run(source, device_id, space, config, flops_twin=True)
            run["search_pair_s"] = time.monotonic() - started
            print(
                f"  {target} ms: predicted {run['result']['predicted_ms']:.2f} ms "
                f"({run['result']['search_s']:.0f} s), "
                f"twin {run['flops_twin']['predicted_ms']:.2f} ms"
            )
            searches.append(run)
    searched = [r[kind]["architecture"] for r in searches for kind in ("result", "flops_twin")]
    controls = measured_validation[: args.remeasure]
    archs = searched + controls
    # Training has ended: let its threads and caches settle before the device is timed.
    time.sleep(10)
    print(
        f"[5/5] measuring the {len(searched)} searched architectures end to end, with "
        f"{len(controls)} validation networks again, in one job"
    )
    torch.set_num_threads(1)
    with ServiceLatencySource(url, token) as source:
        measured = source.measure(
            device_id,
            space.name,
            archs,
            timeout_s=3600,
            settings=network_timing.model_dump(exclude_none=True),
            run_agent=agent,
        )
    for n, run in enumerate(searches):
        for m, kind in enumerate(("result", "flops_twin")):
            row = run[kind]
            row["measured_ms"] = measured[2 * n + m]
            row["measured_error_pct"] = (
                100 * (row["measured_ms"] - row["target_ms"]) / row["target_ms"]
            )
        run["latency"] = "measured on the device, in one job after all searches"
    first = {tuple(p.architecture): p.measured_ms for p in report.points}
    again = measured[len(searched) :]
    predicted_now = client.predict(device_id, space.name, controls).latency_ms
    drift = {
        "networks": len(controls),
        "median_ratio_to_first_measurement": statistics.median(
            m / first[tuple(a)] for a, m in zip(controls, again, strict=True)
        ),
        "median_error_vs_predicted_pct": statistics.median(
            100 * (m - p) / p for m, p in zip(again, predicted_now, strict=True)
        ),
    }
    return {
        "space": space.name,
        "space_sha256": space.digest,
        "device": client.get_device(device_id).model_dump(mode="json"),
        "layer_variants": len(variants),
        "layers_measured": chosen,
        "calibration_networks": len(calibration),
        "predictor_version": predictor.version,
        "layer_model": predictor.metrics.get("layer_model"),
        "validation": {
            "networks": len(measured_validation),
            **{name: report.metrics[name] for name in ACCURACY},
        },
        "noise_floor": report.noise_floor,
        "range_ms": [low, high],
        "drift": drift,
        "checks": checks,
        "searches": searches,
        "mispricing": _mispricing(
            module, space, searches[len(searches) // 2]["result"]["architecture"]
        ),
        "profiling_seconds": {"export": timings.export_s, "measure": timings.measure_s},
    }


def _checks(
    client: HwlatClient, device_id: int, space: SearchSpace, module: ChannelCostModule
) -> dict[str, Any]:
    """The cost module against /v1/predict at 200 architectures, and its gradient against
    central finite differences at a point between the choices."""
    archs = [[int(c) for c in a] for a in space.sample(200, seed=11)]
    served = client.predict(device_id, space.name, archs).latency_ms
    mine = [module.of(a) for a in archs]
    equal = max(abs(m - s) / s for m, s in zip(mine, served, strict=True))
    decisions = module.cost.decisions
    low, high = module.values_of(module.narrowest()), module.values_of(module.widest())
    point = (low + 0.37 * (high - low)).requires_grad_(True)
    (gradient,) = torch.autograd.grad(module(point), point)
    step = 1e-3
    errors = []
    with torch.no_grad():
        for d in range(len(decisions)):
            up, down = point.detach().clone(), point.detach().clone()
            up[d] += step
            down[d] -= step
            numeric = float(module(up) - module(down)) / (2 * step)
            errors.append(abs(float(gradient[d]) - numeric) / max(abs(numeric), 1e-9))
    return {
        "architectures_compared": len(archs),
        "max_relative_difference_to_predict": equal,
        "gradient_entries": len(errors),
        "gradient_max_relative_error": max(errors),
        "gradient_step": step,  # channels for a width, ratio for an expansion
    }


def _mispricing(
    module: ChannelCostModule, space: SearchSpace, architecture: list[int]
) -> list[dict[str, Any]]:
    """Each searched layer of an architecture: its predicted ms, MFLOPs and ms per MFLOP."""
    flops = ChannelCostModule(flop_cost(module.cost, space))
    keys = {p.name: k for p, k in zip(space.positions, space.network(architecture), strict=True)}
    values = module.values_of(architecture)
    with torch.no_grad():
        ms = module.layer_costs(values).tolist()
        mflops = flops.layer_costs(values).tolist()
    rows = []
    for layer, layer_ms, layer_mflops in zip(module.cost.layers, ms, mflops, strict=True):
        rows.append(
            {
                "layer": layer.name,
                "layer_key": str(keys[layer.name]),
                "predicted_ms": module.cost.a * layer_ms,
                "mflops": layer_mflops,
                "ms_per_mflop": module.cost.a * layer_ms / layer_mflops,
            }
        )
    return rows


if __name__ == "__main__":
    main()
