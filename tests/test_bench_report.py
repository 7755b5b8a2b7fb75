"""docs/benchmarks.md says what each run measured: every label comes from the run's data."""

from __future__ import annotations

from typing import Any

from scripts.bench_report import accuracy_section


def run(calibration: dict[str, Any], n_layers: int = 84) -> dict[str, Any]:
    metrics = {"n": 200, "within_5pct": 0.9, "within_10pct": 1.0, "mape": 2.0}
    metrics |= {"rmse_ms": 0.1, "kendall_tau": 0.9}
    return {
        "command": "python -m scripts.bench_accuracy",
        "date": "2026-11-27T00:00:00+00:00",
        "device": {
            "model": "box",
            "runtime": "litert",
            "runtime_version": "2",
            "delegate": "xnnpack",
            "threads": 1,
        },
        "space": "spnas-se-mobilenetv2-224",
        "settings": {"repeats": 3, "n_calibrate": 30},
        "predictor_metrics": {
            "n_layers": n_layers,
            "calibration": {"spnas-se-mobilenetv2-224": calibration},
        },
        "validation": metrics,
        "baselines": {"per_op_forest": metrics, "table_sum": metrics},
        "held_out_layers": {"n": 80, "mape": 4.0, "within_5pct": 0.7, "max_pct": 20.0},
        "profiling_seconds": {
            "all_export": 1,
            "all_measure": 1,
            "layers_export": 1,
            "layers_measure": 1,
        },
        "seconds_total": 3,
    }


def test_a_rejected_calibration_is_not_called_a_calibration() -> None:
    rejected = {"a": 1.0, "b": 0.0, "n_networks": 30, "rejected": True}
    text = "\n".join(accuracy_section(run(rejected)))
    assert "| hwlat (table sum; calibration rejected) |" in text
    assert "table + calibration" not in text
    assert "84 layer variants of `spnas-se-mobilenetv2-224`" in text
    assert "44" not in text
    assert "| random forest per op type |" in text
    assert "nn-Meter" not in text
    assert "nn_meter" not in text


def test_a_kept_calibration_is_named() -> None:
    kept = {"a": 1.05, "b": 0.1, "n_networks": 30, "rejected": False}
    assert "| hwlat (table + calibration) |" in "\n".join(accuracy_section(run(kept)))
