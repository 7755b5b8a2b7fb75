"""Which statistics catch a disturbed timing window on this machine: the evidence behind the
quality gate's thresholds (device_agents/quality.py).

    .venv/bin/python -m scripts.bench_interference [--rounds 12] [--networks 6] [--layers 6]

Two phases, each ``--rounds`` rounds over the same models (whole networks of
spnas-mobilenetv2-224 and some of its layers), every model measured once per round,
interleaved, pinned to CPU 0:

- quiet: nothing else started on purpose (whatever else runs on the host still counts);
- disturbed: ``scripts/disturb.py`` loads CPU 1 in bursts of 1.5 s every ~6 s and logs them.

Every window records its median and the evidence the host agent computes (speed probe ratio,
median over p10, other processes' CPU share, steal). A window is *inflated* when its median is
more than 4% above its model's quiet median (the median of its quiet-phase windows). For each
statistic and threshold the benchmark reports how many inflated windows it flags (catch rate)
and how many clean ones (false alarms), and what the gate at its default thresholds does to a
model's estimate: the error of the median of three windows, raw against gated (the first three
windows the gate accepts). Writes docs/bench/interference.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.host import HostBackend
from device_agents.profiling import Measured
from device_agents.quality import Gate
from device_agents.runners import Timing
from models import DEFAULT_SPACE, get_space
from scripts import bench_env

OUT = Path("docs/bench/interference.json")
INFLATED = 0.04
THRESHOLDS: dict[str, list[float]] = {
    "probe_ratio": [1.05, 1.08, 1.10, 1.12, 1.15, 1.20, 1.30],
    "tail_ratio": [1.05, 1.10, 1.15, 1.20, 1.30],
    "other_cpu": [0.05, 0.10, 0.20, 0.30, 0.50],
    "steal": [0.01, 0.05, 0.10],
}


@dataclass
class Window:
    phase: str
    round: int
    model: str
    start: float
    end: float
    median_ms: float
    evidence: dict[str, float]
    burst: bool = False
    inflation: float = 0.0


def measure_phase(
    backend: HostBackend, models: list[tuple[str, Any]], phase: str, rounds: int, timing: Timing
) -> list[Window]:
    space = get_space(DEFAULT_SPACE)
    windows = []
    for round_ in range(rounds):
        for name, target in models:
            start = time.monotonic()
            measured: Measured = (
                backend.measure_network(space, target, timing)
                if isinstance(target, list)
                else backend.measure_layer(target, timing)
            )
            windows.append(
                Window(
                    phase,
                    round_,
                    name,
                    start,
                    time.monotonic(),
                    measured.statistics.median_ms,
                    measured.evidence.as_dict(),
                )
            )
        print(f"{phase} round {round_ + 1}/{rounds}", file=sys.stderr)
    return windows


def detector_table(windows: list[Window]) -> list[dict[str, Any]]:
    rows = []
    for statistic, thresholds in THRESHOLDS.items():
        for threshold in thresholds:
            flagged = [w for w in windows if w.evidence.get(statistic, 0.0) > threshold]
            inflated = [w for w in windows if w.inflation > INFLATED]
            clean = [w for w in windows if w.inflation <= INFLATED]
            rows.append(
                {
                    "statistic": statistic,
                    "threshold": threshold,
                    "catch_rate": _share([w for w in flagged if w.inflation > INFLATED], inflated),
                    "false_alarm_rate": _share(
                        [w for w in flagged if w.inflation <= INFLATED], clean
                    ),
                    "flagged": len(flagged),
                }
            )
    return rows


def _share(part: list[Window], whole: list[Window]) -> float | None:
    return len(part) / len(whole) if whole else None


def estimate_errors(windows: list[Window], quiet: dict[str, float], gate: Gate) -> dict[str, Any]:
    """Per model, the median of its first three windows against its quiet median: raw, and
    gated (the first three windows the gate accepts, as re-measuring would give)."""
    by_model: dict[str, list[Window]] = defaultdict(list)
    for window in windows:
        by_model[window.model].append(window)
    raw, gated = [], []
    for model, group in by_model.items():
        ordered = sorted(group, key=lambda w: w.start)
        accepted = [w for w in ordered if _accepted(w, gate)]
        for chunk in range(len(ordered) // 3):
            three = ordered[3 * chunk : 3 * chunk + 3]
            raw.append(abs(float(np.median([w.median_ms for w in three])) / quiet[model] - 1))
        for chunk in range(len(accepted) // 3):
            three = accepted[3 * chunk : 3 * chunk + 3]
            values = [w.median_ms for w in three]
            keep = [v for i, v in enumerate(values) if i not in gate.outliers(values)]
            gated.append(abs(float(np.median(keep)) / quiet[model] - 1))
    return {
        "median_of_3_raw": _summary(raw),
        "median_of_3_gated": _summary(gated),
        "windows_rejected": sum(1 for w in windows if not _accepted(w, gate)),
        "windows": len(windows),
    }


def _accepted(window: Window, gate: Gate) -> bool:
    from device_agents.quality import Evidence

    return gate.judge(Evidence(**window.evidence)).accepted


def _summary(errors: list[float]) -> dict[str, float]:
    values = np.asarray(errors) * 100
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "mean_abs_error_pct": float(values.mean()),
        "p90_abs_error_pct": float(np.percentile(values, 90)),
        "max_abs_error_pct": float(values.max()),
        "within_2pct": float(np.mean(values <= 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--num-runs", type=int, default=50)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs: one to measure on, one to disturb")
    space = get_space(DEFAULT_SPACE)
    models: list[tuple[str, Any]] = [
        (f"net {','.join(map(str, a))}", [int(c) for c in a])
        for a in space.sample(args.networks, seed=42)
    ]
    variants = [k for k in space.variants() if k.op.value == "mbconv"]
    step = max(1, len(variants) // max(1, args.layers))
    models += [(str(k), k) for k in variants[::step][: args.layers]]
    backend = HostBackend(cpu_affinity=frozenset({0}), max_busy_fraction=None)
    timing = Timing(warmup_runs=10, num_runs=args.num_runs)
    for name, target in models:  # export (and warm) everything before any clock runs
        if isinstance(target, list):
            backend.measure_network(space, target, Timing(warmup_runs=1, num_runs=1))
        else:
            backend.measure_layer(target, Timing(warmup_runs=1, num_runs=1))
        print(f"ready: {name}", file=sys.stderr)
    windows = measure_phase(backend, models, "quiet", args.rounds, timing)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "bursts.jsonl"
        disturber = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.disturb",
                "--cpus",
                "1",
                "--burst-s",
                "1.5",
                "--period-s",
                "6",
                "--jitter-s",
                "2",
                "--log",
                str(log),
            ]
        )
        try:
            windows += measure_phase(backend, models, "disturbed", args.rounds, timing)
        finally:
            disturber.terminate()
            disturber.wait(timeout=30)
        bursts = [json.loads(line) for line in log.read_text().splitlines()]
    for window in windows:
        window.burst = any(b["start"] < window.end and window.start < b["end"] for b in bursts)
    quiet = {
        name: float(
            np.median([w.median_ms for w in windows if w.model == name and w.phase == "quiet"])
        )
        for name, _ in models
    }
    for window in windows:
        window.inflation = window.median_ms / quiet[window.model] - 1
    gate = Gate()
    phases: dict[str, dict[str, Any]] = {
        phase: {
            "windows": sum(1 for w in windows if w.phase == phase),
            "inflated": sum(1 for w in windows if w.phase == phase and w.inflation > INFLATED),
            "touched_by_a_burst": sum(1 for w in windows if w.phase == phase and w.burst),
            "detectors": detector_table([w for w in windows if w.phase == phase]),
            "gate_at_defaults": estimate_errors(
                [w for w in windows if w.phase == phase], quiet, gate
            ),
        }
        for phase in ("quiet", "disturbed")
    }
    result = {
        "benchmark": "interference",
        "command": bench_env.command("scripts.bench_interference"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("ai-edge-litert", "numpy")),
        "settings": {**vars(args), "inflated_above_pct": 100 * INFLATED, "gate": asdict(gate)},
        "bursts": len(bursts),
        "phases": phases,
        "windows": [asdict(w) for w in windows],
    }
    bench_env.write_report(OUT, result, indent=1)
    for phase, data in phases.items():
        print(f"\n{phase}: {data['windows']} windows, {data['inflated']} inflated >4%")
        print(f"{'statistic':<12}{'>':>6}{'catch':>8}{'false alarm':>13}")
        for row in data["detectors"]:
            catch = "-" if row["catch_rate"] is None else f"{100 * row['catch_rate']:.0f}%"
            alarm = row["false_alarm_rate"]
            print(
                f"{row['statistic']:<12}{row['threshold']:>6}{catch:>8}"
                f"{'-' if alarm is None else f'{100 * alarm:.0f}%':>13}"
            )
        print(json.dumps(data["gate_at_defaults"], indent=1))


if __name__ == "__main__":
    main()
