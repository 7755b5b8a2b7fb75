"""The NAS search engine on a device: SPNAS to three latency targets, and a Pareto search
against a random sample of the same size.

Run: ``python -m scripts.bench_search`` (``make bench``). Writes ``docs/bench/search.json``
and ``docs/bench/search_pareto.png``.

Which device:
- a running service (``--service``/``HWLAT_SERVICE_URL``, ``--token``/``HWLAT_TOKEN``,
  ``--device``), e.g. after ``hwlat demo --keep-serving`` on the host: the latencies are that
  device's predictor, and ``--measure --run-host-agent`` measures every SPNAS result on it;
- otherwise the script starts its own service and imports the seed's Pixel 1 table
  (``tests/data/spnas_pixel1_runtime_model.json``) as the device's predictor. There is no
  phone to measure on then, so the report gives predicted latencies only, and says so.

SPNAS: for targets at 25, 50 and 75% of the space's predicted range (or ``--target-ms``),
target, predicted and measured latency, wall time and predict requests. Pareto: NSGA-II with
``--trials`` trials against ``--trials`` random architectures scored the same way (the same
one-shot supernet, the same predict route); hypervolume of each with the same reference point.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import optuna
import torch

from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from models import DEFAULT_SPACE, SearchSpace, get_space
from nas.digits import load_digits
from nas.front import Scored, hypervolume, pareto_front
from nas.latency import ServiceLatencySource, device_table
from nas.one_shot import OneShotConfig
from nas.pareto import ParetoConfig, score
from nas.plot import plot_front
from nas.runs import Measuring, load_or_train_supernet, pareto_run, spnas_run
from nas.spnas import SpnasConfig
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
# The seed's published Pixel 1 table, kept in the repository (the tests read it too).
PIXEL1 = ROOT / "tests" / "data" / "spnas_pixel1_runtime_model.json"
SEED_CONSTANT_MS = 19.5999
OUT = ROOT / "docs" / "bench" / "search.json"
PLOT = ROOT / "docs" / "bench" / "search_pareto.png"
TARGET_FRACTIONS = (0.25, 0.5, 0.75)
PIXEL1_DEVICE = {
    "name": "pixel1-seed-table",
    "kind": "android",
    "model": "Pixel 1 (the seed's published table, imported)",
    "runtime": "benchmark_model",
    "runtime_version": "seed-paper",
    "delegate": "cpu",
    "threads": 1,
    "precision": "fp32",
}


def main() -> None:
    args = _arguments()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    space = get_space(args.space)
    with _device(args, space) as (url, token, device_id, origin):
        source = ServiceLatencySource(url, token)
        try:
            report = _run(args, space, source, url, token, device_id, origin)
        finally:
            source.close()
    bench_env.write_report(args.out, report)
    print(_summary(report))
    print(f"wrote {args.out} and {args.plot}")


def _run(
    args: argparse.Namespace,
    space: SearchSpace,
    source: ServiceLatencySource,
    url: str,
    token: str | None,
    device_id: int,
    origin: str,
) -> dict[str, Any]:
    table = device_table(source, device_id, space)
    low, high = table.range_ms()
    targets = args.target_ms or [low + f * (high - low) for f in TARGET_FRACTIONS]
    measuring = None
    if args.measure:
        agent = _host_agent(url, token, device_id, args.gate) if args.run_host_agent else None
        measuring = Measuring(source, timeout_s=args.measure_timeout, run_agent=agent)
    spnas_rows = []
    for target in targets:
        before = source.calls.predict
        started = time.monotonic()
        config = SpnasConfig(
            target_ms=target,
            epochs=args.epochs,
            warmup_epochs=args.warmup_epochs,
            resolution=args.resolution,
            seed=args.seed,
        )
        result = spnas_run(source, device_id, space, config, measuring=measuring, table=table)
        row = {
            **{k: result["result"][k] for k in _SPNAS_FIELDS},
            "decoded_ms": result["decoded"]["predicted_ms"],
            "landing_flips": len((result["landing"] or {}).get("flips", [])),
            "wall_s": time.monotonic() - started,
            "search_s": result["search_s"],
            "predict_requests": source.calls.predict - before,
            "epochs": result["epochs"],
        }
        spnas_rows.append(row)
        print(
            f"SPNAS target {target:.3f} ms: predicted {row['predicted_ms']:.3f} ms "
            f"({row['predicted_error_pct']:+.2f}%), measured {row['measured_ms']}, "
            f"{row['wall_s']:.0f} s",
            flush=True,
        )
    pareto = _pareto(args, space, source, device_id, table.predictor_version, high)
    return {
        "command": bench_env.command("scripts.bench_search"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("hwlat", "torch", "optuna", "numpy")),
        "device": {"id": device_id, "origin": origin},
        "space": space.name,
        "predictor_version": table.predictor_version,
        "space_range_ms": [low, high],
        "latency": (
            "measured on the device (median of 3 interleaved runs)"
            if measuring
            else "predicted only: not measured on the device"
        ),
        "note": (
            "accuracy is a proxy (digits, CPU-trained); latency is the device's predictor "
            "(and measurement where given) for the real space"
        ),
        "spnas": {
            "epochs": args.epochs,
            "warmup_epochs": args.warmup_epochs,
            "resolution": args.resolution,
            "results": spnas_rows,
        },
        "pareto": pareto,
    }


_SPNAS_FIELDS = (
    "target_ms",
    "predicted_ms",
    "measured_ms",
    "predicted_error_pct",
    "measured_error_pct",
    "proxy_accuracy",
    "architecture",
)


def _pareto(
    args: argparse.Namespace,
    space: SearchSpace,
    source: ServiceLatencySource,
    device_id: int,
    predictor_version: int,
    reference_ms: float,
) -> dict[str, Any]:
    started = time.monotonic()
    supernet = load_or_train_supernet(
        space, args.resolution, OneShotConfig(epochs=args.supernet_epochs, seed=args.seed), None
    )
    train_s = time.monotonic() - started
    before = source.calls.predict
    started = time.monotonic()
    config = ParetoConfig(
        trials=args.trials,
        population=args.population,
        seed=args.seed,
        study_name=f"bench-{os.getpid()}",
    )
    report, result = pareto_run(source, device_id, space, config, supernet)
    search_s = time.monotonic() - started
    requests = source.calls.predict - before
    digits = load_digits(supernet.resolution, space.input_channels, supernet.config.seed)
    sample = space.sample(args.trials, seed=args.seed + 1)
    random_points = score(space, device_id, source, supernet, digits, sample.tolist())
    trials = [r.scored() for r in result.trials]
    front = pareto_front(trials)
    hv_search = hypervolume(trials, 0.0, reference_ms)
    hv_random = hypervolume(random_points, 0.0, reference_ms)
    dominated = sum(_dominated(p, front) for p in random_points)
    plot_front(
        args.plot,
        trials,
        title=f"{space.name}, predictor v{predictor_version}: NSGA-II vs random, "
        f"{args.trials} each",
        accuracy_label=f"one-shot accuracy, digits {supernet.resolution} px (proxy)",
        latency_label="predicted latency, ms",
        baseline=random_points,
    )
    return {
        "trials": args.trials,
        "population": args.population,
        "accuracy_estimate": report["accuracy_estimate"],
        "supernet_epochs": args.supernet_epochs,
        "supernet_train_s": train_s,
        "search_s": search_s,
        "predict_requests": requests,
        "front_size": len(front),
        "hypervolume": hv_search,
        "random_hypervolume": hv_random,
        "hypervolume_ratio": hv_search / hv_random if hv_random else None,
        "random_points_dominated_pct": 100.0 * dominated / len(random_points),
        "reference": {"accuracy": 0.0, "latency_ms": reference_ms},
        "front": report["front"],
    }


def _dominated(point: Scored, front: list[Scored]) -> bool:
    return any(
        f.accuracy >= point.accuracy
        and f.latency_ms <= point.latency_ms
        and (f.accuracy, f.latency_ms) != (point.accuracy, point.latency_ms)
        for f in front
    )


@contextmanager
def _device(
    args: argparse.Namespace, space: SearchSpace
) -> Iterator[tuple[str, str | None, int, str]]:
    """(url, token, device id, origin): the given service, or an own one with the seed table."""
    if args.service:
        if args.device is None:
            raise SystemExit("--device is needed with a running service (see GET /v1/devices)")
        yield args.service, args.token, args.device, f"device {args.device} of {args.service}"
        return
    if args.measure:
        raise SystemExit("--measure needs a real device: pass --service, --token and --device")
    with tempfile.TemporaryDirectory(prefix="hwlat-bench-search-") as tmp:
        env = hwlat_env(Path(tmp))
        token = create_token(env, "admin", "bench-search")
        with ServiceProcess(env, Path(tmp) / "serve.log") as server, server.client(token) as http:
            device_id = int(_ok(http.post("/v1/devices", json=PIXEL1_DEVICE))["id"])
            _ok(
                http.post(
                    f"/v1/devices/{device_id}/runtime-table",
                    params={
                        "space": space.name,
                        "format": "spnas",
                        "constant_ms": SEED_CONSTANT_MS,
                    },
                    content=PIXEL1.read_text(),
                    headers={"Content-Type": "text/plain"},
                )
            )
            yield server.url, token, device_id, "the seed's Pixel 1 table, imported (no device)"


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise SystemExit(f"service refused: {response.status_code} {response.text}")
    return response.json()


def _host_agent(url: str, token: str | None, device_id: int, gate: bool) -> Callable[[], None]:
    from device_agents.quality import gate_for
    from hwlat.pipeline import host_agent_runner
    from latency_api import HwlatClient

    def run() -> None:
        with HwlatClient(url, token) as client:
            host_agent_runner(client, device_id, gate=gate_for(gate))()

    return run


def _summary(report: dict[str, Any]) -> str:
    lines = [
        f"{report['space']} on {report['device']['origin']}; {report['latency']}",
        "",
        "| target ms | predicted ms | measured ms | wall s | predict requests |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in report["spnas"]["results"]:
        measured = "-" if r["measured_ms"] is None else f"{r['measured_ms']:.3f}"
        lines.append(
            f"| {r['target_ms']:.3f} | {r['predicted_ms']:.3f} ({r['predicted_error_pct']:+.1f}%) "
            f"| {measured} | {r['wall_s']:.0f} | {r['predict_requests']} |"
        )
    p = report["pareto"]
    lines += [
        "",
        f"Pareto: {p['trials']} trials, front {p['front_size']}, hypervolume "
        f"{p['hypervolume']:.3f} vs random {p['random_hypervolume']:.3f}; "
        f"{p['random_points_dominated_pct']:.0f}% of random points dominated by the front",
    ]
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", default=os.environ.get("HWLAT_SERVICE_URL"))
    parser.add_argument("--token", default=os.environ.get("HWLAT_TOKEN"))
    parser.add_argument("--device", type=int)
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--target-ms", type=float, nargs="*")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--supernet-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--run-host-agent", action="store_true")
    # As every agent: the quality gate on unless --no-gate.
    parser.add_argument("--gate", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--measure-timeout", type=float, default=3600.0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plot", type=Path, default=PLOT)
    return parser.parse_args()


if __name__ == "__main__":
    main()
