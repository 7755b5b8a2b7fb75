"""A neighbour that disturbs on purpose: bursts of full load on chosen CPUs, logged.

    .venv/bin/python -m scripts.disturb --cpus 1 --burst-s 1.5 --period-s 10 --log bursts.jsonl

Every ``period-s`` seconds (jittered, seeded) it loads the CPUs for ``burst-s`` seconds:
memory-bound copies of large arrays, which slow a neighbouring core through the shared caches
and memory bus the way another tenant of a host does. Each burst is logged as a JSON line
``{"start": t, "end": t}`` in the system-wide monotonic clock, so that a benchmark can tell
which of its timing windows a burst touched. Stops on SIGTERM or after ``--duration-s``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from types import FrameType

import numpy as np

COPY_MB = 64


def _load(cpu: int, until: float) -> None:
    """Copy a large array back and forth on ``cpu`` until ``until`` (monotonic)."""
    os.sched_setaffinity(0, {cpu})
    source = np.ones(COPY_MB * 1024 * 1024 // 8)
    target = np.empty_like(source)
    while time.monotonic() < until:
        np.copyto(target, source)
        np.copyto(source, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpus", default="1", help="Comma-separated CPUs to load.")
    parser.add_argument("--burst-s", type=float, default=1.5)
    parser.add_argument("--period-s", type=float, default=10.0)
    parser.add_argument("--jitter-s", type=float, default=3.0)
    parser.add_argument("--duration-s", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    cpus = [int(c) for c in args.cpus.split(",")]
    rng = random.Random(args.seed)
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + args.duration_s
    with args.log.open("a") as log:
        while not stopping and time.monotonic() < deadline:
            time.sleep(max(0.0, args.period_s + rng.uniform(-args.jitter_s, args.jitter_s)))
            if stopping:
                break
            start = time.monotonic()
            until = start + args.burst_s
            workers = [
                multiprocessing.Process(target=_load, args=(cpu, until), daemon=True)
                for cpu in cpus
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            log.write(json.dumps({"start": start, "end": time.monotonic()}) + "\n")
            log.flush()


if __name__ == "__main__":
    main()
