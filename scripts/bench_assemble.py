"""Time getting a network's .tflite: assembled from the layer files against converted whole.

    .venv/bin/python -m scripts.bench_assemble [--space spnas-mobilenetv2-224] [--networks 3]
        [--precision fp32,int8] [--reps 3] [--seed 0]

The same seeded architectures, in the same run, three ways, each into a cache directory that
holds no file of that network:
- converted: ``export_keys(..., method="convert")``, the Keras network through the converter;
- assembled, cold: ``export_keys(...)`` on an empty cache, so every layer is converted first
  (one after the other, in this process) and then joined;
- assembled, warm: ``export_keys(...)`` with every layer file cached, i.e. reading the layer
  files, joining them (and for int8 calibrating and quantising), writing the file.
Times are ``time.monotonic`` around the call, in one process whose TensorFlow is imported
before any timing (its import is no network's cost). ``warm_fresh_process_s`` is the wall time
of a new Python process that assembles one network from a warm cache, imports included: what
an agent pays, and the proof in numbers that no TensorFlow import is in it (fp32).
Medians over the repetitions per network, then the median over networks. Writes
docs/bench/assemble.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models import DEFAULT_SPACE, format_architecture
from models.export import ExportSpec, artifact_path, export_keys, export_layer
from models.layer_key import LayerKey
from models.spaces import get_space
from scripts import bench_env

OUT = Path("docs/bench/assemble.json")
# Assembles one network in a new process; prints whether TensorFlow got imported.
_FRESH_PROCESS = """
import sys
from models.export import export_keys
from models.layer_key import parse
export_keys([parse(k) for k in sys.argv[1].split(",")], "tflite", sys.argv[2])
print("tensorflow" in sys.modules)
"""


@dataclass
class Result:
    precision: str
    networks: list[str]
    converted_s: list[float]
    assembled_cold_s: list[float]
    assembled_warm_s: list[float]
    warm_fresh_process_s: list[float]
    tensorflow_in_fresh_process: bool
    median_converted_s: float
    median_assembled_cold_s: float
    median_assembled_warm_s: float
    median_warm_fresh_process_s: float
    speedup_warm: float


def time_export(keys: list[LayerKey], precision: str, cache: Path, method: str | None) -> float:
    """Seconds to export the network into ``cache``, which does not hold it beforehand."""
    forget(keys, precision, cache, method)
    start = time.monotonic()
    export_keys(keys, "tflite", precision, cache, method)
    return time.monotonic() - start


def forget(keys: list[LayerKey], precision: str, cache: Path, method: str | None) -> None:
    """Remove the network's file (and its description) so that the next export makes it."""
    target = artifact_path(ExportSpec.network(keys, "tflite", precision, method), cache)
    target.unlink(missing_ok=True)
    target.with_suffix(".json").unlink(missing_ok=True)


def fresh_process(keys: list[LayerKey], precision: str, cache: Path) -> tuple[float, bool]:
    forget(keys, precision, cache, None)
    command = [sys.executable, "-c", _FRESH_PROCESS, ",".join(map(str, keys)), precision]
    env = {**os.environ, "HWLAT_CACHE_DIR": str(cache)}
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"assembling in a fresh process failed:\n{done.stderr}")
    return elapsed, done.stdout.strip() == "True"


def run(space_name: str, networks: int, precision: str, reps: int, seed: int) -> Result:
    space = get_space(space_name)
    archs = [tuple(int(i) for i in a) for a in space.sample(networks, seed)]
    converted: list[list[float]] = []
    cold: list[list[float]] = []
    warm: list[list[float]] = []
    fresh: list[list[float]] = []
    tensorflow_imported = False
    with tempfile.TemporaryDirectory(prefix="hwlat-bench-assemble-") as scratch:
        warm_cache = Path(scratch) / "warm"
        for n, arch in enumerate(archs):
            keys = list(ExportSpec.network(space.network(arch), "tflite", precision).keys)
            print(f"{precision} network {n + 1}/{networks}", file=sys.stderr)
            for key in keys:
                export_layer(key, "tflite", "fp32", cache_dir=warm_cache)
            times: dict[str, list[float]] = {"convert": [], "cold": [], "warm": [], "fresh": []}
            for rep in range(reps):
                cold_cache = Path(scratch) / f"cold-{n}-{rep}"
                times["cold"].append(time_export(keys, precision, cold_cache, None))
                shutil.rmtree(cold_cache)
                times["convert"].append(time_export(keys, precision, warm_cache, "convert"))
                times["warm"].append(time_export(keys, precision, warm_cache, None))
                elapsed, imported = fresh_process(keys, precision, warm_cache)
                times["fresh"].append(elapsed)
                tensorflow_imported |= imported
            converted.append(times["convert"])
            cold.append(times["cold"])
            warm.append(times["warm"])
            fresh.append(times["fresh"])

    def medians(per_network: list[list[float]]) -> list[float]:
        return [round(statistics.median(ts), 4) for ts in per_network]

    median_converted = statistics.median(medians(converted))
    median_warm = statistics.median(medians(warm))
    return Result(
        precision=precision,
        networks=[format_architecture(a) for a in archs],
        converted_s=medians(converted),
        assembled_cold_s=medians(cold),
        assembled_warm_s=medians(warm),
        warm_fresh_process_s=medians(fresh),
        tensorflow_in_fresh_process=tensorflow_imported,
        median_converted_s=round(median_converted, 3),
        median_assembled_cold_s=round(statistics.median(medians(cold)), 3),
        median_assembled_warm_s=round(median_warm, 4),
        median_warm_fresh_process_s=round(statistics.median(medians(fresh)), 3),
        speedup_warm=round(median_converted / median_warm, 1),
    )


def table(results: list[Result], space: str) -> str:
    lines = [
        f"| {space} | converted, s | assembled cold, s | assembled warm, s "
        "| warm in a new process, s | speed-up (warm) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.precision} | {r.median_converted_s:.2f} | {r.median_assembled_cold_s:.2f} "
            f"| {r.median_assembled_warm_s:.3f} | {r.median_warm_fresh_process_s:.2f} "
            f"| {r.speedup_warm:.0f}x |"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    packages = ("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert", "flatbuffers")
    return bench_env.environment(packages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--networks", type=int, default=3)
    parser.add_argument("--precision", default="fp32,int8", help="comma-separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from models.export.converters import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow  # noqa: F401  (imported before timing: the import is no network's cost)

    load_before = os.getloadavg()
    started = time.monotonic()
    results = [
        run(args.space, args.networks, precision, args.reps, args.seed)
        for precision in args.precision.split(",")
    ]
    report = {
        "benchmark": "assemble",
        "command": bench_env.command("scripts.bench_assemble"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": (
            f"{args.networks} architectures of {args.space} sampled with seed {args.seed}; per "
            "network and precision: converted whole (method='convert'), assembled from an "
            "empty cache (its layers converted first, in-process), assembled with every layer "
            "cached, and assembled with every layer cached in a new Python process (imports "
            f"included); medians of {args.reps} repetitions per network, then over networks; "
            "TensorFlow imported before timing"
        ),
        "environment": environment(),
        "seconds": round(time.monotonic() - started, 1),
        "load_average_1_5_15min": bench_env.load_around(load_before),
        "results": [asdict(r) for r in results],
    }
    bench_env.write_report(OUT, report)
    print(table(results, args.space))


if __name__ == "__main__":
    main()
