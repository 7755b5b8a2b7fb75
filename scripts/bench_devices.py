"""Measure this host as five devices: the data the new-device benchmark leaves one out of.

Run: ``python -m scripts.bench_devices`` (part of ``make bench``; ~30 minutes on 2 cores, most of
it int8 conversion on a cold export cache). Each device is a distinct device to the service (its
own fingerprint): LiteRT fp32 with 1 and with 2 threads, LiteRT int8, LiteRT without XNNPACK
(its built-in kernels), ONNX Runtime fp32. On each it measures, with the host agent's backend:

- every layer variant of the seed space and its fixed parts;
- ``--ofa-layers`` variants of OFA's MobileNetV3 space, the same random ones on every device (so
  that devices can be compared on the layers both measured, as the service does);
- ``--networks`` random seed-space networks end to end.

Every model is timed ``--repeats`` times, the repeats interleaved (a whole pass over the models,
shuffled, then the next) so that a burst of noise on the shared host lands on one repeat of many
models rather than on every repeat of one; the median of the repeats is kept. Exports run first,
on both cores, and are not timed.

Writes ``docs/bench/devices_raw.json``; ``python -m scripts.bench_new_device`` reads it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device_agents.host import HostBackend
from device_agents.runners import Timing
from hwlat.progress import progress_bar
from latency_api.schemas.enums import Runtime
from models import DEFAULT_SPACE, LayerKey, SearchSpace, get_space
from models.export import ExportSpec, export_specs
from models.precision import Precision
from models.space_spec import load_spec
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "devices_raw.json"
OFA_SPEC = ROOT / "spaces" / "ofa_mbv3_d234_e346_k357_w1.0.yaml"


@dataclass(frozen=True)
class HostDevice:
    """One way of running models on this host, named as the benchmark reports it."""

    label: str
    runtime: Runtime = Runtime.litert
    threads: int = 1
    xnnpack: bool = True
    precision: Precision = Precision.FP32

    def backend(self) -> HostBackend:
        return HostBackend(
            runtime=self.runtime,
            num_threads=self.threads,
            use_xnnpack=self.xnnpack,
            precision=self.precision,
            max_busy_fraction=0.3,
        )


DEVICES: tuple[HostDevice, ...] = (
    HostDevice("litert-fp32-1t"),
    HostDevice("litert-fp32-2t", threads=2),
    HostDevice("litert-int8-1t", precision=Precision.INT8),
    HostDevice("litert-builtin-1t", xnnpack=False),
    HostDevice("ort-fp32-1t", runtime=Runtime.onnxruntime),
)
LAYER_TIMING = Timing(warmup_runs=10, num_runs=50, min_secs=0.0)
NETWORK_TIMING = Timing(warmup_runs=3, num_runs=15, min_secs=0.0)


def seed_layers(space: SearchSpace) -> list[LayerKey]:
    return list(dict.fromkeys([*space.prefix, *space.variants(), *space.suffix]))


def ofa_layers(n: int, seed: int) -> list[LayerKey]:
    space = SearchSpace(load_spec(OFA_SPEC))
    variants = list(space.variants())
    return random.Random(seed).sample(variants, min(n, len(variants)))


def _interleaved(
    items: Sequence[Any], repeats: int, seed: int, measure: Callable[[Any], float], what: str
) -> list[list[float]]:
    """Each item timed ``repeats`` times, one shuffled pass over all of them per repeat."""
    times: list[list[float]] = [[] for _ in items]
    rng = random.Random(seed)
    done, total = 0, len(items) * repeats
    with progress_bar(what) as advance:
        for _ in range(repeats):
            order = list(range(len(items)))
            rng.shuffle(order)
            for i in order:
                times[i].append(measure(items[i]))
                done += 1
                advance(done, total)
    return times


def measure_device(
    device: HostDevice,
    layers: list[LayerKey],
    space: SearchSpace,
    archs: list[list[int]],
    repeats: int,
    seed: int,
) -> dict[str, Any]:
    backend = device.backend()
    fmt = backend.export_format
    started = time.monotonic()
    export_specs(
        [ExportSpec.layer(k, fmt, device.precision) for k in layers]
        + [ExportSpec.network(space.network(a), fmt, device.precision) for a in archs],
        workers=2,
        progress=True,
    )
    export_s = time.monotonic() - started
    started = time.monotonic()
    layer_ms = _interleaved(
        layers,
        repeats,
        seed,
        lambda k: backend.measure_layer(k, LAYER_TIMING).statistics.median_ms,
        f"{device.label}: layers",
    )
    network_ms = _interleaved(
        archs,
        repeats,
        seed + 1,
        lambda a: backend.measure_network(space, a, NETWORK_TIMING).statistics.median_ms,
        f"{device.label}: networks",
    )
    return {
        "label": device.label,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": backend.describe().model_dump(mode="json"),
        "fingerprint_sha256": backend.describe().fingerprint(),
        "export_s": export_s,
        "measure_s": time.monotonic() - started,
        "layers": {
            str(k): {"median_ms": statistics.median(ms), "repeats_ms": ms}
            for k, ms in zip(layers, layer_ms, strict=True)
        },
        "networks": [
            {"architecture": a, "median_ms": statistics.median(ms), "repeats_ms": ms}
            for a, ms in zip(archs, network_ms, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=210)
    parser.add_argument("--ofa-layers", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--devices", default=",".join(d.label for d in DEVICES), help="Labels, comma-separated."
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--update",
        action="store_true",
        help="Keep the other devices already in --out; replace (or add) only these.",
    )
    args = parser.parse_args()
    space = get_space(DEFAULT_SPACE)
    layers = seed_layers(space) + ofa_layers(args.ofa_layers, args.seed)
    archs = [[int(c) for c in a] for a in space.sample(args.networks, args.seed)]
    chosen = args.devices.split(",")
    unknown = set(chosen) - {d.label for d in DEVICES}
    if unknown:
        raise SystemExit(f"unknown device label(s) {sorted(unknown)}; known: {DEVICES}")
    started = time.monotonic()
    kept: list[dict[str, Any]] = []
    if args.update and args.out.exists():
        kept = [d for d in json.loads(args.out.read_text())["devices"] if d["label"] not in chosen]
    measured: list[dict[str, Any]] = list(kept)
    for device in (d for d in DEVICES if d.label in chosen):
        print(f"{device.label}: {len(layers)} layers, {len(archs)} networks, x{args.repeats}")
        measured.append(measure_device(device, layers, space, archs, args.repeats, args.seed))
        # Written after every device: an hour of measuring is not lost to the last one failing.
        _write(args, space, measured, time.monotonic() - started)
    print(f"wrote {args.out}")


def _write(
    args: argparse.Namespace, space: SearchSpace, measured: list[dict[str, Any]], wall_s: float
) -> None:
    bench_env.write_report(
        args.out,
        {
            "benchmark": "devices_raw",
            "command": bench_env.command("scripts.bench_devices"),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "environment": bench_env.environment(
                ("ai-edge-litert", "onnxruntime", "tensorflow-cpu", "numpy")
            ),
            "space": space.name,
            "settings": {
                "networks": args.networks,
                "ofa_layers": args.ofa_layers,
                "repeats": args.repeats,
                "seed": args.seed,
                "layer_timing": LAYER_TIMING.model_dump(),
                "network_timing": NETWORK_TIMING.model_dump(),
            },
            "devices": measured,
            "wall_s": wall_s,
        },
    )


if __name__ == "__main__":
    main()
