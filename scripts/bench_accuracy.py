"""Accuracy on this host: the demo pipeline at the issue's scale, plus held-out layers.

Run: ``python -m scripts.bench_accuracy`` (part of ``make bench``). It profiles the
``spnas-mobilenetv2-224`` variant set through the job queue, measures calibration networks,
fits, and validates on at least 200 unseen random architectures measured end to end, with
the baselines on the same networks. It then fits the layer regression leaving each searchable
variant out in turn to show how well a never-measured layer is predicted. Writes
``docs/bench/accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hwlat.demo import run_demo
from models import Op, parse
from predictor.fitting import fit_regression
from scripts import bench_env

OUT = Path("docs/bench/accuracy.json")


def held_out_layers(layers: dict[str, float]) -> dict[str, Any]:
    """Leave each MBConv variant out, fit on the rest, predict it: the error of an estimate."""
    keys = [parse(k) for k in layers]
    errors = []
    for i, key in enumerate(keys):
        if key.op is not Op.MBCONV:
            continue
        rest = [k for j, k in enumerate(keys) if j != i]
        model = fit_regression(rest, [layers[str(k)] for k in rest])
        predicted = float(model.predict([key])[0])
        errors.append(abs(predicted - layers[str(key)]) / layers[str(key)])
    values = np.asarray(errors)
    return {
        "n": int(values.size),
        "mape": float(100 * values.mean()),
        "within_5pct": float(np.mean(values <= 0.05)),
        "within_10pct": float(np.mean(values <= 0.10)),
        "max_pct": float(100 * values.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-validate", type=int, default=200)
    parser.add_argument("--n-calibrate", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run_demo(
            space_name="spnas-mobilenetv2-224",
            workdir=Path(tmp),
            report_path=Path(tmp) / "r.json",
            n_validate=args.n_validate,
            n_calibrate=args.n_calibrate,
            repeats=args.repeats,
            num_runs=50,
            seed=args.seed,
            keep_serving=False,
            port=None,
        )
    layers: dict[str, float] = report["layers"]
    result = {
        "benchmark": "accuracy",
        "command": "python -m scripts.bench_accuracy " + " ".join(sys.argv[1:]),
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
            "seed": args.seed,
        },
        "profiling_seconds": report["profiling_seconds"],
        "seconds_total": report["seconds_total"],
        "predictor_metrics": report["predictor_metrics"],
        "validation": report["validation"],
        "baselines": report["baselines"],
        "held_out_layers": held_out_layers(layers),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("validation", "held_out_layers")}, indent=2))


if __name__ == "__main__":
    main()
