"""Time exporting a search space's whole layer-variant set: first run, then from the cache.

    .venv/bin/python -m scripts.bench_export [--space spnas-mobilenetv2-224] [--format tflite]
        [--precision fp32] [--workers 2,1] [--reps 3]

Each repetition starts from a fresh, empty cache directory and runs the command a user types,
``hwlat export variants SPACE --workers N``, as a new process: the first run converts every
variant, the second finds them all in the content-addressed cache. Times are wall-clock
(``time.monotonic`` around the whole process), so they include Python start-up, spawning the
workers and importing TensorFlow in each. The cache lookup alone (``export_variants`` on the
filled cache, in this process) is timed too. Writes docs/bench/export.json and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models import DEFAULT_SPACE
from models.export import export_variants
from models.spaces import get_space
from scripts import bench_env

OUT = Path("docs/bench/export.json")


@dataclass
class Result:
    workers: int
    variants: int
    first_run_s: list[float]
    cached_run_s: list[float]
    cache_lookup_s: list[float]
    median_first_run_s: float
    median_cached_run_s: float
    median_cache_lookup_s: float
    per_variant_first_run_s: float
    total_mb: float


def hwlat_variants(
    space: str, fmt: str, precision: str, workers: int, cache: str
) -> tuple[float, str]:
    """Run ``hwlat export variants`` in a new process; return its wall time and stdout."""
    command = [sys.executable, "-m", "hwlat.cli", "export", "variants", space, "--format", fmt]
    command += ["--workers", str(workers), "--no-progress"]
    command += ["--int8"] if precision == "int8" else []
    env = {**os.environ, "HWLAT_CACHE_DIR": cache}
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return elapsed, done.stdout


def run(space: str, fmt: str, precision: str, workers: int, reps: int) -> Result:
    keys = get_space(space).variants()
    first: list[float] = []
    cached: list[float] = []
    lookup: list[float] = []
    size = 0
    for rep in range(reps):
        with tempfile.TemporaryDirectory(prefix="hwlat-bench-export-") as cache:
            print(f"workers={workers} rep {rep + 1}/{reps}", file=sys.stderr)
            elapsed, listing = hwlat_variants(space, fmt, precision, workers, cache)
            first.append(elapsed)
            elapsed, again = hwlat_variants(space, fmt, precision, workers, cache)
            cached.append(elapsed)
            if again != listing or len(listing.splitlines()) != len(keys):
                raise RuntimeError("the cached run listed different files")
            start = time.monotonic()
            paths = export_variants(
                keys, fmt, precision, workers=workers, progress=False, cache_dir=cache
            )
            lookup.append(time.monotonic() - start)
            size = sum(p.stat().st_size for p in paths.values())
    median_first = statistics.median(first)
    return Result(
        workers=workers,
        variants=len(keys),
        first_run_s=[round(t, 3) for t in first],
        cached_run_s=[round(t, 3) for t in cached],
        cache_lookup_s=[round(t, 5) for t in lookup],
        median_first_run_s=round(median_first, 2),
        median_cached_run_s=round(statistics.median(cached), 3),
        median_cache_lookup_s=round(statistics.median(lookup), 4),
        per_variant_first_run_s=round(median_first / len(keys), 3),
        total_mb=round(size / 1e6, 1),
    )


def environment() -> dict[str, Any]:
    return bench_env.environment(("tensorflow-cpu", "tensorflow", "keras", "torch", "onnx"))


def table(results: list[Result], space: str, fmt: str, precision: str) -> str:
    lines = [
        f"| workers | variants ({space}, {fmt} {precision}) | first run, s | per variant, s "
        "| cached run, s | cache lookup only, ms | files, MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.workers} | {r.variants} | {r.median_first_run_s:.1f} "
            f"| {r.per_variant_first_run_s:.2f} | {r.median_cached_run_s:.2f} "
            f"| {r.median_cache_lookup_s * 1000:.1f} | {r.total_mb} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--format", default="tflite", choices=("tflite", "onnx"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--workers", default="2,1", help="comma-separated worker counts")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    # Anything else running on the 2 cores shows up directly in the times; record it.
    load_before = os.getloadavg()
    started = time.monotonic()
    results = [run(args.space, args.format, args.precision, w, args.reps) for w in workers]
    report = {
        "benchmark": "export",
        "command": bench_env.command("scripts.bench_export"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": (
            f"`hwlat export variants {args.space}` as a new process into a fresh temporary "
            "cache (spawned worker pool, TensorFlow imported in each worker), then the same "
            "command on the filled cache, then export_variants in-process on the filled cache "
            f"(lookup only); medians of {args.reps} repetitions, each from an empty cache"
        ),
        "environment": environment(),
        "seconds": round(time.monotonic() - started, 1),
        "load_average_1_5_15min": bench_env.load_around(load_before),
        "results": [asdict(r) for r in results],
    }
    bench_env.write_report(OUT, report)
    print(table(results, args.space, args.format, args.precision))


if __name__ == "__main__":
    main()
