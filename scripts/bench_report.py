"""Write docs/benchmarks.md from the JSON results in docs/bench/ (the last step of make bench).

The page quotes only what a benchmark run wrote, with the command and date of that run;
a section whose JSON is missing says so instead of showing stale numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latency_api.redaction import redact_json
from predictor.metrics import Metric

BENCH = Path("docs/bench")
PAGE = Path("docs/benchmarks.md")


def load_result(name: str) -> dict[str, Any] | None:
    return load_json(BENCH / f"{name}.json")


def load_json(path: Path) -> dict[str, Any] | None:
    """A run's JSON, redacted: a file written before the recorders redacted (or by hand) can
    still hold a token, and the pages must not quote it."""
    if not path.exists():
        return None
    data: dict[str, Any] = redact_json(json.loads(path.read_text()))
    return data


def run_line(data: dict[str, Any]) -> str:
    return f"Command: `{data['command'].strip()}`, run {data['date']}."


# How the page names each predictor a run reports; an earlier run's name for the same thing is
# kept visible so that the page never claims a system it does not reproduce.
PREDICTOR_NAMES = {
    "macs_proportional": "MACs-proportional",
    "table_sum": "plain table sum",
    "per_op_forest": "random forest per op type",
    "nn_meter_rf": "random forest per op type (that run's name: nn_meter_rf)",
}


def _hwlat_label(metrics: dict[str, Any]) -> str:
    """What the run's hwlat predictor was: with its calibration, or the plain sum when every
    calibration of the run was rejected."""
    calibrations = metrics.get("calibration", {}).values()
    if calibrations and all(c.get("rejected") for c in calibrations):
        return "hwlat (table sum; calibration rejected)"
    if not calibrations or all(c.get("n_networks", 0) == 0 for c in calibrations):
        return "hwlat (table sum; no calibration networks)"
    return "hwlat (table + calibration)"


def export_section(data: dict[str, Any]) -> list[str]:
    variants = data["results"][0]["variants"] if data["results"] else 0
    lines = [
        run_line(data),
        "",
        f"The {variants} layer variants of `spnas-mobilenetv2-224` to TFLite fp32 with "
        "`hwlat export variants`, each run a new process from an empty cache (Python start-up "
        "and TensorFlow import in every worker included); the cached run finds every file in "
        "the content-addressed cache. Medians of the repetitions.",
        "",
        "| workers | variants | first run, s | per variant, s | cached run, s | "
        "cache lookup only, ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["results"]:
        lines.append(
            f"| {r['workers']} | {r['variants']} | {r['median_first_run_s']:.1f} | "
            f"{r['per_variant_first_run_s']:.2f} | {r['median_cached_run_s']:.2f} | "
            f"{1000 * r['median_cache_lookup_s']:.1f} |"
        )
    return lines


def assemble_section(data: dict[str, Any]) -> list[str]:
    lines = [
        run_line(data),
        "",
        f"Setup: {data['setup']}.",
        "",
        "| precision | converted, s | assembled from an empty cache, s | assembled, layers "
        "cached, s | same in a new process, s | speed-up (layers cached) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in data["results"]:
        lines.append(
            f"| {r['precision']} | {r['median_converted_s']:.2f} | "
            f"{r['median_assembled_cold_s']:.2f} | {r['median_assembled_warm_s']:.3f} | "
            f"{r['median_warm_fresh_process_s']:.2f} | {r['speedup_warm']:.0f}x |"
        )
    return lines


def ingest_section(data: dict[str, Any]) -> list[str]:
    lines = [
        run_line(data),
        "",
        f"Setup: {data['setup']}.",
        "",
        "| backend | batch size | measurements/s (median) | ms per request (median) |",
        "|---|---:|---:|---:|",
    ]
    for r in data["results"]:
        lines.append(
            f"| {r['backend']} | {r['batch_size']} | {r['median_measurements_per_s']:,.0f} | "
            f"{r['median_request_ms']:.1f} |"
        )
    return lines


def predict_section(data: dict[str, Any]) -> list[str]:
    ip, http = data["in_process"], data["http"]
    load = http["load"]
    return [
        run_line(data),
        "",
        "In process: the compiled predictor of the seed's imported Pixel 1 table on a batch of "
        "1,000,000 sampled architectures, against an OFA-style loop (per architecture, per "
        "layer, build a key and look it up in a dict) on the same table in the same run. Over "
        f"HTTP: `hwlat serve` on {http.get('backend', 'sqlite')}; the load generator "
        "(`scripts/loadgen.py`) is a "
        "separate process sending single-architecture requests open-loop at a fixed rate.",
        "",
        "| measure | result | aim |",
        "|---|---:|---:|",
        f"| in-process predictions/s | {ip['archs_per_s']:,.0f} | ≥ 10,000,000 |",
        f"| OFA-style dict loop, same run | {ip['ofa_loop_archs_per_s']:,.0f} | |",
        f"| speed-up over the loop | {ip['speedup']:,.0f}x | ≥ 100x |",
        f"| 10,000 architectures in one request (median) | "
        f"{http['batch_10000_ms_median']:.1f} ms | ≤ 20 ms |",
        *_elastic_row(http),
        f"| load: {load['target_rps']:.0f} req/s target, {load['requests']} requests, "
        f"{load['service_workers']} worker(s) | {load['achieved_rps']:.0f} req/s sent | "
        "≥ 1,000 for 60 s |",
        f"| latency p50 / p90 / p99 | {load['p50_ms']:.1f} / {load['p90_ms']:.1f} / "
        f"{load['p99_ms']:.1f} ms | p99 ≤ 5 ms |",
        f"| errors | {sum(load['errors'].values())} | 0 |",
        *_load_runs_line(http),
    ]


def _elastic_row(http: dict[str, Any]) -> list[str]:
    rows = []
    for key in ("elastic_all_measured", "elastic"):
        elastic = http.get(key)
        if elastic is None:  # a report written before spaces were data
            continue
        rows.append(
            f"| the same over {elastic['space']} ({elastic['decisions']} decisions, layers "
            f"depending on earlier choices; {elastic['measured_variants']} of "
            f"{elastic['layer_variants']} variants measured, answer "
            f"{elastic.get('answer_bytes', 0) / 1e3:.0f} kB) | "
            f"{elastic['batch_10000_ms_median']:.1f} ms ({elastic['ratio_to_fixed']:.2f}x) "
            "| ≤ 2x |"
        )
    return rows


def _load_runs_line(http: dict[str, Any]) -> list[str]:
    runs = http.get("load_runs") or []
    if len(runs) < 2:
        return []
    p99s = ", ".join(f"{r['p99_ms']:.1f}" for r in runs)
    return [
        "",
        f"The load ran {len(runs)} times; the row above is the run with the median p99 "
        f"(p99 of each run: {p99s} ms).",
    ]


def accuracy_section(data: dict[str, Any]) -> list[str]:
    device, settings = data["device"], data["settings"]
    lines = [
        run_line(data),
        "",
        f"Device: {device['model']} ({device['runtime']} {device['runtime_version']}, "
        f"{device['delegate']}, {device['threads']} thread). The predictor was fitted on the "
        f"{data['predictor_metrics']['n_layers']} layer variants of `{data['space']}` (each "
        f"measured {settings['repeats']} times interleaved) and "
        f"{settings['n_calibrate']} calibration networks, then validated on "
        f"{data['validation'][Metric.N]} *other* random architectures, each measured end to end "
        f"{settings['repeats']} times (median). The baselines are fitted on the same data "
        "and scored on the same networks.",
        "",
        "| predictor | ±5% | ±10% | MAPE % | RMSE ms | Kendall τ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = [(_hwlat_label(data["predictor_metrics"]), data["validation"])]
    rows += [(PREDICTOR_NAMES.get(name, name), m) for name, m in data["baselines"].items()]
    for name, m in rows:
        lines.append(
            f"| {name} | {100 * m[Metric.WITHIN_5PCT]:.1f}% | "
            f"{100 * m[Metric.WITHIN_10PCT]:.1f}% | "
            f"{m[Metric.MAPE]:.2f} | {m[Metric.RMSE_MS]:.3f} | {m[Metric.KENDALL_TAU]:.3f} |"
        )
    floor = data.get("noise_floor") or {}
    if floor.get(Metric.COMPARISONS):
        lines.append(
            f"| the measurement against itself (test-retest, {floor[Metric.NETWORKS]} networks) | "
            f"{100 * floor[Metric.WITHIN_5PCT]:.1f}% | {100 * floor[Metric.WITHIN_10PCT]:.1f}% | "
            f"{floor[Metric.MAPE]:.2f} | | |"
        )
    quality = data.get("measurement_quality")
    if quality:
        lines += [
            "",
            f"Quality gate {'on' if quality['gate'] else 'off'}: "
            f"{quality['rejected_layer_measurements']} layer and "
            f"{quality['rejected_network_measurements']} network measurements rejected, "
            f"{quality['remeasured']} taken again.",
        ]
    if data.get("disturbed"):
        lines += [
            "",
            f"A disturber loaded the other CPU in {data['disturbed']['bursts']} bursts of 1.5 s "
            "during the run (`scripts/disturb.py`).",
        ]
    held = data["held_out_layers"]
    seconds = data["profiling_seconds"]
    for space, cal in data["predictor_metrics"]["calibration"].items():
        verdict = (
            "rejected: it did not beat the plain sum in leave-one-out, so a = 1, b = 0"
            if cal.get("rejected")
            else f"latency = {cal['a']:.3f} · Σ {'-' if cal['b'] < 0 else '+'} "
            f"{abs(cal['b']):.3f} ms"
        )
        lines += [
            "",
            f"Calibration on {cal['n_networks']} networks of {space}: {verdict} (leave-one-out "
            f"MAPE {cal.get('loo_mape_pct') or float('nan'):.2f}% against "
            f"{cal.get('uncalibrated_mape_pct') or float('nan'):.2f}% uncalibrated).",
        ]
    lines += [
        "",
        f"Layers never measured (each of the {held[Metric.N]} MBConv variants left out in turn, "
        f"the regression fitted on the rest): MAPE {held[Metric.MAPE]:.2f}%, "
        f"{100 * held[Metric.WITHIN_5PCT]:.0f}% within ±5%, worst {held['max_pct']:.1f}% (aim: "
        "MAPE ≤ 5%).",
        "",
        f"Wall time: {data['seconds_total']:.0f} s in all; converting models "
        f"{seconds['all_export']:.0f} s, measuring {seconds['all_measure']:.0f} s (of which "
        f"the layer variant set: export {seconds['layers_export']:.0f} s, measure "
        f"{seconds['layers_measure']:.0f} s).",
    ]
    return lines


def profile_section(data: dict[str, Any]) -> list[str]:
    first, cached, rep = data["first_run"], data["cached_run"], data["repeatability"]
    settings = data["settings"]
    return [
        run_line(data),
        "",
        f"The {data['variants']} layer variants of `spnas-mobilenetv2-224` on this host "
        f"(LiteRT, {settings['delegate']}, {settings['threads']} thread, 10 warm-up runs, "
        f"then at least {settings['num_runs']} timed runs and "
        f"{settings.get('min_secs', 0)} s each).",
        "",
        "| run | export, s | measure, s | total, s | aim |",
        "|---|---:|---:|---:|---:|",
        f"| first (empty cache) | {first['export_s']:.1f} | {first['measure_s']:.1f} | "
        f"{first['export_s'] + first['measure_s']:.1f} | < 300 |",
        f"| cached | {cached['export_s']:.2f} | {cached['measure_s']:.1f} | "
        f"{cached['export_s'] + cached['measure_s']:.1f} | |",
        "",
        f"Repeatability: every layer measured {settings['repeats']} times, interleaved; spread "
        "of a layer = (max - min) / median of its medians. Median spread "
        f"{rep['median_spread_pct']:.2f}%, 90th percentile {rep['p90_spread_pct']:.2f}%, worst "
        f"{rep['max_spread_pct']:.2f}% (`{rep['worst_layer']}`); "
        f"{100 * rep['layers_under_3pct']:.0f}% of layers under 3% (aim: under 3%).",
    ]


def interference_section(data: dict[str, Any]) -> list[str]:
    lines = [
        run_line(data),
        "",
        "The same models (whole networks and layers of `spnas-mobilenetv2-224`, pinned to CPU 0) "
        f"measured {data['settings']['rounds']} rounds on a quiet machine, then as many while "
        f"`scripts/disturb.py` loaded CPU 1 in {data['bursts']} bursts of 1.5 s. A window is "
        "inflated when its median is more than 4% above its model's quiet median. For each "
        "statistic and threshold: the share of inflated windows it flags (catch) and of clean "
        "windows it flags (false alarm).",
        "",
        "| phase | statistic | threshold | catch | false alarm |",
        "|---|---|---:|---:|---:|",
    ]
    for phase, result in data["phases"].items():
        for row in result["detectors"]:
            catch, alarm = row["catch_rate"], row["false_alarm_rate"]
            lines.append(
                f"| {phase} | {row['statistic']} | {row['threshold']:g} | "
                f"{'-' if catch is None else f'{100 * catch:.0f}%'} | "
                f"{'-' if alarm is None else f'{100 * alarm:.0f}%'} |"
            )
    lines += [
        "",
        "A model's estimate from three windows (median), against its quiet median, without and "
        "with the gate at its defaults:",
        "",
        "| phase | windows | inflated | rejected | error raw (mean / p90 / max %) | "
        "error gated (mean / p90 / max %) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for phase, result in data["phases"].items():
        gate = result["gate_at_defaults"]
        raw, gated = gate["median_of_3_raw"], gate["median_of_3_gated"]
        lines.append(
            f"| {phase} | {result['windows']} | {result['inflated']} | "
            f"{gate['windows_rejected']} | {_errors(raw)} | {_errors(gated)} |"
        )
    return lines


def _errors(summary: dict[str, float]) -> str:
    if not summary.get("n"):
        return "-"
    return (
        f"{summary['mean_abs_error_pct']:.2f} / {summary['p90_abs_error_pct']:.2f} / "
        f"{summary['max_abs_error_pct']:.2f}"
    )


def search_section(data: dict[str, Any], stem: str = "search") -> list[str]:
    spnas, pareto = data["spnas"], data["pareto"]
    lines = [
        run_line(data),
        "",
        f"`{data['space']}` on {data['device']['origin']} (predictor v"
        f"{data['predictor_version']}); latency: {data['latency']}. Accuracy is a proxy "
        f"(digits at {spnas['resolution']} px).",
        "",
        f"Single-Path NAS, {spnas['epochs']} epochs ({spnas['warmup_epochs']} warm-up) per "
        "target; aim: measured within ±5% of the target.",
        "",
        "| target ms | predicted ms | measured ms | landing flips | wall s | predict requests |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in spnas["results"]:
        measured = (
            "-"
            if r["measured_ms"] is None
            else f"{r['measured_ms']:.3f} ({r['measured_error_pct']:+.1f}%)"
        )
        lines.append(
            f"| {r['target_ms']:.3f} | {r['predicted_ms']:.3f} "
            f"({r['predicted_error_pct']:+.1f}%) | {measured} | {r['landing_flips']} | "
            f"{r['wall_s']:.0f} | {r['predict_requests']} |"
        )
    lines += [
        "",
        f"Pareto (NSGA-II, {pareto['trials']} trials, population {pareto['population']}, "
        f"{pareto['predict_requests']} predict requests) against {pareto['trials']} random "
        f"architectures scored the same way: hypervolume {pareto['hypervolume']:.3f} vs "
        f"{pareto['random_hypervolume']:.3f} (reference: accuracy 0, "
        f"{pareto['reference']['latency_ms']:.2f} ms); the front ({pareto['front_size']} "
        f"architectures) dominates {pareto['random_points_dominated_pct']:.0f}% of the random "
        f"ones. Supernet training {pareto['supernet_train_s']:.0f} s, search "
        f"{pareto['search_s']:.0f} s. Accuracy: {pareto['accuracy_estimate']}.",
        "",
        f"![Pareto front against a random sample](bench/{stem}_pareto.png)",
    ]
    return lines


def other_runs(name: str) -> list[str]:
    """Earlier or side runs kept beside a section (docs/bench/<name>_*.json), one line each,
    or a whole section for a search run; a file of a more specific section is left to it."""
    lines = []
    sections = {section for _, section, _ in SECTIONS}
    for path in sorted(BENCH.glob(f"{name}_*.json")):
        if any(
            path.stem == s or path.stem.startswith(s + "_")
            for s in sections
            if s != name and s.startswith(name)
        ):
            continue
        data = load_json(path) or {}
        label = path.stem.removeprefix(f"{name}_")
        note = f" ({data['note']})" if data.get("note") else ""
        if data.get("benchmark") == "ofa_mbv3":
            m = data["validation"]
            lines.append(
                f"- `{label}`{note}, {data['date']}: {data['layers_measured']} layers measured "
                f"({data.get('choose', 'random')}), {data['estimated_layer_share_pct']:.1f}% of "
                f"the networks' layers estimated: {100 * m[Metric.WITHIN_5PCT]:.1f}% within ±5%, "
                f"{100 * m[Metric.WITHIN_10PCT]:.1f}% within ±10%, MAPE {m[Metric.MAPE]:.2f}%."
            )
        elif "validation" in data:
            m, floor = data["validation"], data.get("noise_floor") or {}
            best = max(data["baselines"].items(), key=lambda kv: kv[1][Metric.WITHIN_5PCT])
            settings = data["settings"]
            retest = (
                f", test-retest {100 * floor[Metric.WITHIN_5PCT]:.1f}% within ±5%"
                if floor.get(Metric.COMPARISONS)
                else ""
            )
            lines.append(
                f"- `{label}`{note}, {data['date']}, gate "
                f"{'on' if settings.get('gate', True) else 'off'}"
                f"{', disturbed' if data.get('disturbed') else ''}: hwlat "
                f"{100 * m[Metric.WITHIN_5PCT]:.1f}% within ±5%, "
                f"{100 * m[Metric.WITHIN_10PCT]:.1f}% within ±10%, MAPE {m[Metric.MAPE]:.2f}%"
                f"{retest}; best baseline {best[0]} "
                f"{100 * best[1][Metric.WITHIN_5PCT]:.1f}% within ±5%; "
                f"{data['seconds_total']:.0f} s."
            )
        elif "repeatability" in data:
            rep = data["repeatability"]
            lines.append(
                f"- `{label}` ({data['date']}): median spread {rep['median_spread_pct']:.2f}%, "
                f"worst {rep['max_spread_pct']:.2f}%, {100 * rep['layers_under_3pct']:.0f}% of "
                "layers under 3%."
            )
        elif "spnas" in data:
            lines += ["", f"### `{label}`{note}", "", *search_section(data, path.stem)]
    if lines:
        lines = ["", f"Other runs kept for comparison (`docs/bench/{name}_*.json`):", *lines]
    return lines


def ofa_section(data: dict[str, Any]) -> list[str]:
    device = data["device"]
    chosen = data.get("choose", "random")
    how = (
        "chosen by the service (active sampling, `POST /v1/devices/{id}/plans`, in rounds)"
        if chosen == "active"
        else "a seeded random sample"
    )
    estimator = "the layer model" if data.get("layer_model") else "the regression"
    lines = [
        run_line(data),
        "",
        f"Device: {device['model']} ({device['runtime']} {device['runtime_version']}, "
        f"{device['delegate']}, {device['threads']} thread). `{data['space']}` registered as "
        f"a spec file; {data['layers_measured']} of its {data['layer_variants']} layer variants "
        f"measured ({how}), every other one estimated by {estimator}; "
        f"{data['calibration_networks']} calibration networks; validated on "
        f"{data['validation'][Metric.N]} networks ({len(data['resolutions'])} resolutions, "
        f"{', '.join(str(r) for r in data['resolutions'])}, of each random OFA config), "
        f"measured end to end. Of the layers of those networks, "
        f"{data['estimated_layer_share_pct']:.1f}% were estimated, not measured.",
        "",
        "| predictor | ±5% | ±10% | MAPE % | Kendall τ |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [("hwlat (measured + estimated layers, a·Σ+b)", data["validation"])]
    rows += [(f"at {r} px", m) for r, m in data["per_resolution"].items()]
    rows += [(PREDICTOR_NAMES.get(name, name), m) for name, m in data["baselines"].items()]
    for name, m in rows:
        lines.append(
            f"| {name} | {100 * m[Metric.WITHIN_5PCT]:.1f}% | "
            f"{100 * m[Metric.WITHIN_10PCT]:.1f}% | {m[Metric.MAPE]:.2f} | "
            f"{m[Metric.KENDALL_TAU]:.3f} |"
        )
    floor = data.get("noise_floor") or {}
    if floor.get(Metric.COMPARISONS):
        lines.append(
            f"| the measurement against itself (test-retest) | "
            f"{100 * floor[Metric.WITHIN_5PCT]:.1f}% | {100 * floor[Metric.WITHIN_10PCT]:.1f}% | "
            f"{floor[Metric.MAPE]:.2f} | |"
        )
    curve = data.get("budget_curve")
    if curve:
        lines += [
            "",
            "Budget curve: predictors fitted (offline, with the service's fit) on the first N "
            "layers of the active sequence and of a random one measured in the same run, scored "
            "on the same networks:",
            "",
            "![OFA budget curve](bench/ofa_budget_curve.png)",
            "",
            "| layers | active ±5% | ±10% | MAPE % | random ±5% | ±10% | MAPE % |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n, active in curve["active"].items():
            lines.append(f"| {n} | {_rates(active)} | {_rates(curve['random'].get(n))} |")
    seconds = data["profiling_seconds"]
    lines += [
        "",
        f"Wall time {data['wall_s'] / 60:.1f} min (export {seconds['all_export']:.0f} s, "
        f"measure {seconds['all_measure']:.0f} s).",
    ]
    return lines


def _rates(m: dict[str, Any] | None) -> str:
    if m is None:
        return "— | — | —"
    return (
        f"{100 * m[Metric.WITHIN_5PCT]:.1f}% | {100 * m[Metric.WITHIN_10PCT]:.1f}% | "
        f"{m[Metric.MAPE]:.2f}"
    )


def new_device_section(data: dict[str, Any]) -> list[str]:
    settings = data["settings"]
    lines = [
        run_line(data),
        "",
        f"Each host device of `{data['raw']['file']}` (measured {data['raw']['date']} by "
        "`python -m scripts.bench_devices`) is left out in turn and brought up as a new device: "
        f"the other devices' layer model chooses {settings['layers']} of its layers and "
        f"{settings['networks']} calibration networks; the predictor fitted on them (the others "
        f"as its prior) predicts the other networks of `{data['space']}`, measured end to end. "
        "Beside it, on the same calibration networks: the device fully profiled, the MACs "
        "proxy, and the layer model without other devices (its 10 layers alone).",
        "",
        "| new device | few-shot ±5% | ±10% | MAPE % | fully profiled ±5% | ±10% | MAPE % "
        "| MACs proxy ±5% | ±10% | MAPE % | without other devices ±5% | ±10% | MAPE % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["leave_one_device_out"]:
        lines.append(
            f"| {row['device']} | {_rates(row['few_shot'])} | {_rates(row['fully_profiled'])} "
            f"| {_rates(row['macs_proxy'])} | {_rates(row['without_other_devices'])} |"
        )
    lines += [
        "",
        "The same 10 layers, at layer level (no calibration involved): the space's other "
        "layers, and the device's OFA MobileNetV3 sample (7x7 kernels, h-swish, SE: kinds none "
        "of the 10 has), as the 10-layer model estimates them with and without the other "
        "devices as its prior:",
        "",
        "| new device | part | layers | with other devices ±10% | MAPE % | without ±10% | MAPE % |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in data["leave_one_device_out"]:
        for part, held in (row.get("held_out_layers") or {}).items():
            prior, alone = held["with_other_devices"], held["without_other_devices"]
            lines.append(
                f"| {row['device']} | {part.replace('_', ' ')} | {held['n']} | "
                f"{100 * prior[Metric.WITHIN_10PCT]:.1f}% | {prior[Metric.MAPE]:.2f} | "
                f"{100 * alone[Metric.WITHIN_10PCT]:.1f}% | {alone[Metric.MAPE]:.2f} |"
            )
    lines += [
        "",
        "Which known devices the prior leaned on (weight, and the new device's latency as a "
        "multiple of theirs):",
        "",
    ]
    for row in data["leave_one_device_out"]:
        shown = ", ".join(
            f"{s['device']} {s['weight']:.2f} ({s['speed_ratio']:.2f}x)"
            for s in row["similar_devices"]
        )
        lines.append(f"- {row['device']}: {shown}")
    lines += [
        "",
        "**Budget curve** (layers measured on the device, chosen actively in rounds of 5 with a "
        "refit between, or at random: median of 5 draws; networks within ±5% / ±10% / MAPE):",
        "",
        "![Budget curve](bench/budget_curve.png)",
        "",
        "| device | prior | layers | active ±5% | ±10% | MAPE % | random ±5% | ±10% | MAPE % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for device, modes in data["budget_curve"].items():
        for mode, rows in modes.items():
            for n, row in rows.items():
                lines.append(
                    f"| {device} | {mode.replace('_', ' ')} | {n} | {_rates(row['active'])} | "
                    f"{_rates(row['random_median'])} |"
                )
    lines += [
        "",
        "**Held-out layers** (10-fold over every layer the device measured: the seed space's "
        "and a random sample of OFA MobileNetV3's, the model fitted on the rest, no other "
        "device):",
        "",
        "| device | seed MAPE % | worst tenth % | OFA sample MAPE % | worst tenth % "
        "| 90% interval held |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for device, held in data["held_out_layers"].items():
        seed, ofa = held["seed_space"], held["ofa_mbv3_sample"]
        lines.append(
            f"| {device} | {seed[Metric.MAPE]:.2f} | {seed['worst_decile_mape']:.1f} | "
            f"{ofa[Metric.MAPE]:.2f} | {ofa['worst_decile_mape']:.1f} | "
            f"{held['interval90_holds_pct']:.0f}% |"
        )
    pixel = data["pixel1"]
    lines += [
        "",
        f"**The seed's Pixel 1 table as the new device** (layer level: {pixel['measured']} of "
        f"its {pixel['layers']} layer keys chosen by the host devices' model; MAPE on the "
        f"other {pixel['with_other_devices']['held_out']}): with the host devices as prior "
        f"{pixel['with_other_devices'][Metric.MAPE]:.2f}% (±10% "
        f"{100 * pixel['with_other_devices'][Metric.WITHIN_10PCT]:.0f}%, 90% interval held "
        f"{pixel['with_other_devices']['interval90_holds_pct']:.0f}%), its 10 layers alone "
        f"{pixel['without_other_devices'][Metric.MAPE]:.2f}%.",
    ]
    return lines


def figs_section(data: dict[str, Any]) -> list[str]:
    device = data["device"]
    validation = data["validation"]
    checks = data["checks"]
    lines = [
        run_line(data),
        "",
        f"FiGS (`hwlat search figs`) on {data['space']}, host device {device['model']} "
        f"({device['runtime']}, {device['delegate']}, {device['threads']} thread): "
        f"{data['layers_measured']} of "
        f"its {data['layer_variants']} layer variants measured (chosen by the service) and "
        f"{data['calibration_networks']} calibration networks. The predictor on "
        f"{validation['networks']} held-out networks: "
        f"±5% {100 * validation[Metric.WITHIN_5PCT]:.1f}%, "
        f"±10% {100 * validation[Metric.WITHIN_10PCT]:.1f}%, MAPE {validation[Metric.MAPE]:.2f}%.",
        "",
        f"The channel cost equals `/v1/predict` at {checks['architectures_compared']} "
        f"architectures to {checks['max_relative_difference_to_predict']:.1e} (relative); its "
        f"gradient matches central finite differences to "
        f"{checks['gradient_max_relative_error']:.1e} on all {checks['gradient_entries']} "
        "decisions.",
        "",
        "Three targets over the space's predicted range "
        f"({data['range_ms'][0]:.1f}-{data['range_ms'][1]:.1f} ms), each with its FLOPs twin "
        "(the same search on MorphNet's FLOP cost, steered to the FLOPs the latency search "
        "found). All measured end to end in one job after the searches:",
        "",
        "| target ms | cost | MFLOPs | predicted ms | measured ms | vs target | proxy acc. "
        "| search s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in data["searches"]:
        for row in (run["result"], run["flops_twin"]):
            lines.append(
                f"| {row['target_ms']:.2f} | {row['cost']} | {row['mflops']:.0f} "
                f"| {row['predicted_ms']:.2f} | {row['measured_ms']:.2f} "
                f"| {row['measured_error_pct']:+.1f}% | {row['proxy_accuracy']:.3f} "
                f"| {row['search_s']:.0f} |"
            )
    drift = data.get("drift")
    if drift:
        lines += [
            "",
            f"In the same job, {drift['networks']} validation networks measured again: "
            f"{100 * (drift['median_ratio_to_first_measurement'] - 1):+.1f}% against their "
            f"first measurement, {drift['median_error_vs_predicted_pct']:+.1f}% against the "
            "prediction (medians): the device's drift since the predictor was fitted.",
        ]
    rows = sorted(data["mispricing"], key=lambda r: r["ms_per_mflop"], reverse=True)
    lines += [
        "",
        "Where FLOPs mis-price this device (the middle target's latency-driven architecture; "
        "predicted ms per MFLOP, highest and lowest):",
        "",
        "| layer | key | MFLOPs | predicted ms | ms per MFLOP |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows[:4] + rows[-3:]:
        lines.append(
            f"| {row['layer']} | `{row['layer_key']}` | {row['mflops']:.1f} "
            f"| {row['predicted_ms']:.3f} | {row['ms_per_mflop']:.4f} |"
        )
    lines += ["", f"![channels per layer](bench/{data.get('plot', 'figs_channels.png')})"]
    return lines


def memory_section(data: dict[str, Any]) -> list[str]:
    device, model, retest = data["device"], data["model"], data["retest"]
    low, high = data["measured_mb_range"]
    calibration = model["calibration"] or {}
    lines = [
        run_line(data),
        "",
        f"Peak memory on {data['space']}, host device {device['model']} ({device['runtime']}, "
        f"{device['delegate']}, {device['threads']} thread), measured as {data['method']}. "
        f"All {data['layer_variants']} layer variants and {data['calibration_networks']} "
        f"calibration networks measured; {data['validation_networks']} held-out networks "
        f"scored (measured {low:.1f}-{high:.1f} MB; MB = 2^20 bytes).",
        "",
        f"The fitted model: {model['fixed_mb']:.2f} MB fixed + {model['per_weight_byte']:.2f} "
        f"x weights + {model['per_live_byte']:.2f} x the largest live set (fit on layers: MAPE "
        f"{model['fit_mape_pct']:.2f}%), then a = {calibration.get('a', 1.0):.3f}, "
        f"b = {calibration.get('b_mb', 0.0):.2f} MB on the calibration networks.",
        "",
        "| predictor | ±5% | ±10% | MAPE | bias | Kendall τ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, score in data["scores"].items():
        tau = score[Metric.KENDALL_TAU]
        lines.append(
            f"| {name} | {100 * score[Metric.WITHIN_5PCT]:.1f}% "
            f"| {100 * score[Metric.WITHIN_10PCT]:.1f}% | {score[Metric.MAPE]:.2f}% "
            f"| {score[Metric.BIAS_PCT]:+.1f}% | {'-' if tau is None else f'{tau:.3f}'} |"
        )
    lines += [
        "",
        f"The measurement against itself ({retest['networks']} networks measured again, "
        f"each in a fresh process): MAPE {retest['mape_pct']:.2f}%, worst "
        f"{retest['max_pct']:.2f}%.",
    ]
    service = data.get("service_validation")
    if service:
        figures, arithmetic = service["metrics"], service["baselines"]["arithmetic"]
        floor = service.get("noise_floor") or {}
        lines += [
            "",
            f"The service's report on the same {service['n']} networks (`POST "
            "/v1/devices/{id}/validations/metrics`, the retested ones at the median of both "
            f"measurements): MAPE {figures[Metric.MAPE]:.2f}%, ±10% "
            f"{100 * figures[Metric.WITHIN_10PCT]:.1f}%; arithmetic baseline MAPE "
            f"{arithmetic[Metric.MAPE]:.2f}%; noise floor MAPE "
            f"{floor.get(Metric.MAPE, float('nan')):.2f}% over {floor.get('networks', 0)} "
            "networks measured twice.",
        ]
    lines += [
        "",
        f"![peak memory predicted against measured](bench/{data.get('plot', 'memory.png')})",
    ]
    return lines


def pareto_memory_section(data: dict[str, Any]) -> list[str]:
    device, search, hv = data["device"], data["search"], data["hypervolume"]
    random = hv.get("random") or {}
    lines = [
        run_line(data),
        "",
        f"NSGA-II (`hwlat search pareto --objectives accuracy,latency,memory "
        f"--max-memory-mb {data['limits']['max_memory_mb']}`) on {data['space']}, host device "
        f"{device['model']} ({device['runtime']}, {device['delegate']}), after every layer "
        f"variant and {data['calibration_networks']} networks were measured with memory. "
        f"{search['trials_feasible']} of {search['trials_in_study']} trials met the limit, "
        f"against {random.get('feasible', 0)} of {random.get('architectures', 0)} random "
        "architectures scored the same way.",
        "",
        f"Hypervolume ({hv['unit']}; reference: accuracy 0, "
        f"{hv['reference']['latency_ms']:.2f} ms, {hv['reference']['peak_memory_mb']:.1f} MB, "
        "1.1 x the worst of either set): "
        f"search {hv['value']:.4g}, random {random.get('value', 0.0):.4g}, ratio "
        f"{random['ratio']:.2f}."
        if random.get("ratio")
        else "",
        "",
        "The front, measured on the device after the search (latency: median of 3 passes):",
        "",
        "| accuracy | predicted ms | measured ms | error | predicted MB | measured MB | error |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in sorted(data["front"], key=lambda p: p["predicted_ms"]):
        ms_error = 100 * (p["predicted_ms"] - p["measured_ms"]) / p["measured_ms"]
        mb_error = 100 * (p["predicted_mb"] - p["measured_mb"]) / p["measured_mb"]
        lines.append(
            f"| {p['accuracy']:.3f} | {p['predicted_ms']:.2f} | {p['measured_ms']:.2f} "
            f"| {ms_error:+.1f}% | {p['predicted_mb']:.1f} | {p['measured_mb']:.1f} "
            f"| {mb_error:+.1f}% |"
        )
    lines += ["", f"![accuracy, latency and memory](bench/{data.get('plot', 'pareto_memory.png')})"]
    return lines


SECTIONS: list[tuple[str, str, Callable[[dict[str, Any]], list[str]]]] = [
    ("Accuracy", "accuracy", accuracy_section),
    ("Accuracy while a neighbour disturbs", "accuracy_disturbed", accuracy_section),
    ("OFA MobileNetV3, mostly estimated", "ofa_mbv3", ofa_section),
    ("A new device from ten layers and ten networks", "new_device", new_device_section),
    ("FiGS: channel search to a measured latency", "figs", figs_section),
    ("FiGS on LiteRT's built-in kernels", "figs_builtin", figs_section),
    ("Peak memory", "memory", memory_section),
    ("Accuracy, latency and memory", "pareto_memory", pareto_memory_section),
    ("Catching interference", "interference", interference_section),
    ("Prediction speed", "predict", predict_section),
    ("Profiling on the host", "profile", profile_section),
    ("Ingest throughput", "ingest", ingest_section),
    ("Export", "export", export_section),
    ("Network assembly", "assemble", assemble_section),
    ("NAS search", "search", search_section),
]


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`scripts/bench_report.py`) from the JSON files in "
        "`docs/bench/`, which hold every run's raw figures, machine and versions. These "
        "machines are noisy (2 shared cores): figures are medians of repetitions, and "
        "comparisons are against baselines measured in the same run.",
    ]
    for title, name, render in SECTIONS:
        lines += ["", f"## {title}", ""]
        data = load_result(name)
        command = name.replace("_disturbed", " --disturb")
        lines += render(data) if data else [f"Not run yet: `python -m scripts.bench_{command}`."]
        lines += other_runs(name)
    PAGE.write_text("\n".join(lines) + "\n")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
