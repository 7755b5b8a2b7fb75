"""Profiling the whole spnas-mobilenetv2-224 variant set on this host, and its repeatability.

Run: ``python -m scripts.bench_profile`` (part of ``make bench``). First run: an empty export
cache, every variant converted (both cores) then measured; cached run: the same with every
file in the cache. Then each layer is measured ``--repeats`` times, interleaved (every pass
visits all 45 layers before the next starts), and the spread of its medians is reported:
(max - min) / median across the passes. Writes ``docs/bench/profile.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.host import HostBackend
from device_agents.profiling import profile
from device_agents.runners import DEFAULT_MIN_SECS, Timing
from models import DEFAULT_SPACE, get_space
from models.export import export_variants
from scripts import bench_env

OUT = Path("docs/bench/profile.json")


def one_run(backend: HostBackend, cache: Path, num_runs: int) -> dict[str, float]:
    keys = list(get_space(DEFAULT_SPACE).variants())
    started = time.monotonic()
    export_variants(keys, "tflite", "fp32", workers=2, progress=False, cache_dir=cache)
    export_s = time.monotonic() - started
    started = time.monotonic()
    timing = Timing(num_runs=num_runs, min_secs=DEFAULT_MIN_SECS)
    profile(backend, layers=keys, timing=timing, show_progress=False)
    return {"export_s": export_s, "measure_s": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num-runs", type=int, default=50)
    args = parser.parse_args()
    keys = list(get_space(DEFAULT_SPACE).variants())
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        backend = HostBackend(cache_dir=cache)
        first = one_run(backend, cache, args.num_runs)
        cached = one_run(backend, cache, args.num_runs)
        results = profile(
            backend,
            layers=keys,
            timing=Timing(num_runs=args.num_runs, min_secs=DEFAULT_MIN_SECS, repeats=args.repeats),
            show_progress=False,
        )
    medians: dict[str, list[float]] = {}
    for r in results:
        medians.setdefault(str(r.target), []).append(r.measured.statistics.median_ms)
    spread = {k: (max(v) - min(v)) / float(np.median(v)) for k, v in medians.items()}
    values = np.asarray(list(spread.values()))
    worst = max(spread, key=lambda k: spread[k])
    result: dict[str, Any] = {
        "benchmark": "profile",
        "command": bench_env.command("scripts.bench_profile"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("ai-edge-litert", "tensorflow-cpu")),
        "variants": len(keys),
        "settings": {
            "num_runs": args.num_runs,
            "min_secs": DEFAULT_MIN_SECS,
            "warmup_runs": 10,
            "threads": 1,
            "delegate": "xnnpack",
            "repeats": args.repeats,
        },
        "first_run": first,
        "cached_run": cached,
        "repeatability": {
            "median_spread_pct": float(100 * np.median(values)),
            "p90_spread_pct": float(100 * np.percentile(values, 90)),
            "max_spread_pct": float(100 * values.max()),
            "worst_layer": worst,
            "worst_layer_medians_ms": medians[worst],
            "layers_under_3pct": float(np.mean(values < 0.03)),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    bench_env.write_report(OUT, result)
    print(
        json.dumps({k: result[k] for k in ("first_run", "cached_run", "repeatability")}, indent=2)
    )


if __name__ == "__main__":
    main()
