"""Accuracy on this host: the demo pipeline at the issue's scale, plus held-out layers.

Run: ``python -m scripts.bench_accuracy`` (part of ``make bench``). It runs ``hwlat demo``'s
pipeline on ``spnas-mobilenetv2-224``: the variant set through the job queue, calibration and
validation networks measured together, a fit on the calibration networks, the service's
validation on the others (at least 200) with the baselines and the noise floor. It then fits
the layer model leaving each searchable variant out in turn to show how well a
never-measured layer is predicted. Writes ``docs/bench/accuracy.json``.

With ``--disturb``, ``scripts/disturb.py`` loads the other CPU in bursts (1.5 s every ~10 s)
from the start of the network measurements to the end, the way the host's neighbours do, and
the result goes to ``docs/bench/accuracy_disturbed.json``: the quality gate has to keep the
figures. ``--no-gate`` shows what the same run gives without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hwlat.demo import run_demo
from hwlat.demo_config import DemoConfig
from models import DEFAULT_SPACE, Op, parse
from predictor.accuracy import hit_rates
from predictor.layer_model import fit_layer_model
from predictor.metrics import Metric
from scripts import bench_env

OUT = Path("docs/bench/accuracy.json")
OUT_DISTURBED = Path("docs/bench/accuracy_disturbed.json")


def held_out_layers(layers: dict[str, float]) -> dict[str, Any]:
    """Leave each MBConv variant out, fit on the rest, predict it: the error of an estimate."""
    errors = []
    for name, ms in layers.items():
        key = parse(name)
        if key.op is not Op.MBCONV:
            continue
        model = fit_layer_model({k: v for k, v in layers.items() if k != name})
        predicted = float(model.predict([key])[0])
        errors.append(abs(predicted - ms) / ms)
    return {Metric.N: len(errors), **hit_rates(errors), "max_pct": 100 * max(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-validate", type=int, default=200)
    parser.add_argument("--n-calibrate", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--network-runs", type=int, default=15, help="Timed runs per network.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--disturb", action="store_true", help="Bursts on the other CPU.")
    parser.add_argument("--gate", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _disturber(args.disturb, Path(tmp)) as bursts:
        config = DemoConfig(
            space=DEFAULT_SPACE,
            n_validate=args.n_validate,
            n_calibrate=args.n_calibrate,
            repeats=args.repeats,
            num_runs=50,
            network_runs=args.network_runs,
            seed=args.seed,
            # A disturbed run measures through the bursts: the gate, not the busy-host wait,
            # must keep the figures.
            max_busy_fraction=None if args.disturb else 0.3,
            gate=args.gate,
            # The accuracy of the predictor is what this measures; the search has its own
            # benchmark (scripts/bench_search.py).
            search=False,
        )
        report = run_demo(config, workdir=Path(tmp), report_path=Path(tmp) / "r.json")
        burst_count = len(bursts.read_text().splitlines()) if bursts else 0
    layers: dict[str, float] = report["layers"]
    result = {
        "benchmark": "accuracy",
        "command": bench_env.command("scripts.bench_accuracy"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(
            ("ai-edge-litert", "tensorflow-cpu", "scikit-learn", "numpy")
        ),
        "device": report["device"],
        "space": report["space"],
        "settings": {
            "n_validate": args.n_validate,
            "n_calibrate": args.n_calibrate,
            "repeats": args.repeats,
            "layer_runs": 50,
            "network_runs": args.network_runs,
            "seed": args.seed,
            "gate": args.gate,
        },
        "disturbed": {"bursts": burst_count} if args.disturb else None,
        "measurement_quality": report["measurement_quality"],
        "noise_floor": report["noise_floor"],
        "drift": report["drift"],
        "profiling_seconds": report["profiling_seconds"],
        "seconds_total": report["seconds_total"],
        "predictor_metrics": report["predictor_metrics"],
        "validation": report["validation"],
        "baselines": report["baselines"],
        "held_out_layers": held_out_layers(layers),
    }
    out = args.out or (OUT_DISTURBED if args.disturb else OUT)
    bench_env.write_report(out, result)
    print(
        json.dumps(
            {k: result[k] for k in ("validation", "noise_floor", "held_out_layers")}, indent=2
        )
    )


@contextmanager
def _disturber(enabled: bool, workdir: Path) -> Iterator[Path | None]:
    """scripts/disturb.py on the last CPU for the whole run (it starts with the layers, which
    are measured in seconds, so the bursts fall mostly on the networks)."""
    if not enabled:
        yield None
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--disturb needs two CPUs: one to measure on, one to disturb")
    log = workdir / "bursts.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.disturb",
            "--cpus",
            str(cpus[-1]),
            "--burst-s",
            "1.5",
            "--period-s",
            "10",
            "--jitter-s",
            "3",
            "--log",
            str(log),
        ]
    )
    try:
        yield log
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
