"""Whole searches against the service, as the CLI and the benchmark run them, with reports.

Each run fetches the device's runtime table (which also proves the device exists and has a
predictor), searches, asks the service to predict the result, optionally measures it on the
device through the job queue, and returns a JSON-ready report that says which figures are
predicted and which measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from latency_api.schemas.predictors import RuntimeTable
from models import SearchSpace
from models.errors import UserInputError
from nas.channel_cost import ChannelCostModule
from nas.digits import load_digits
from nas.figs import FigsConfig, FigsEpoch, FigsResult, run_figs
from nas.figs import labels as figs_labels
from nas.front import Reference, Scored, front_hypervolume, hypervolume_unit, pareto_front
from nas.latency import (
    ChannelCostSource,
    LatencySource,
    NetworkMeasured,
    NetworkMeasurer,
    Prediction,
    ServiceLatencySource,
    device_table,
)
from nas.objectives import UNIT_NOTES, Objective, objective_names
from nas.one_shot import OneShotConfig, OneShotSupernet, load, save, train_one_shot
from nas.pareto import ParetoConfig, ParetoResult, TrialRecord, run_pareto, score
from nas.spnas import EpochLog, SpnasConfig, SpnasResult, run_spnas
from predictor.channel_cost import flop_cost

PROXY_NOTE = (
    "accuracy is a proxy: scikit-learn's digits upsampled to {resolution}x{resolution} px, "
    "10 classes; latency is real: the device's predictor for {space} at its own input size "
    "({input_hw}x{input_hw})"
)
ONE_SHOT_NOTE = (
    "one-shot estimate: validation accuracy of the path inherited from a weight-sharing "
    "supernet trained single-path one-shot (uniform path sampling), batch norm recalibrated "
    "per path"
)
PREDICTED_ONLY = "predicted only: not measured on the device (pass --measure to measure)"


@dataclass(frozen=True)
class Measuring:
    """How to close the loop: measure the result end to end through the job queue."""

    measurer: NetworkMeasurer
    timeout_s: float = 3600.0
    settings: Mapping[str, Any] = field(default_factory=lambda: {"repeats": 3})
    run_agent: Callable[[], None] | None = None


def proxy_note(space: SearchSpace, resolution: int) -> str:
    return PROXY_NOTE.format(resolution=resolution, space=space.name, input_hw=space.input_hw)


def spnas_run(
    source: LatencySource,
    device_id: int,
    space: SearchSpace,
    config: SpnasConfig,
    *,
    measuring: Measuring | None = None,
    progress: Callable[[int, int, EpochLog | None], None] | None = None,
    table: RuntimeTable | None = None,
) -> dict[str, Any]:
    """``table``: the device's runtime table if the caller has fetched it already."""
    started = time.monotonic()
    table = table or device_table(source, device_id, space)
    low, high = table.require_reachable(config.target_ms)
    result = run_spnas(space, table, config, progress)
    archs = [list(result.architecture)]
    if result.decoded != result.architecture:
        archs.append(list(result.decoded))
    prediction = source.predict(device_id, space.name, archs)
    predicted_ms = prediction.latency_ms[0]
    measured_ms = None
    if measuring is not None:
        measured_ms = measuring.measurer.measure(
            device_id,
            space.name,
            [list(result.architecture)],
            timeout_s=measuring.timeout_s,
            settings=measuring.settings,
            run_agent=measuring.run_agent,
        )[0]
    return {
        "search": "spnas",
        "device_id": device_id,
        "space": space.name,
        "predictor_version": prediction.predictor_version,
        "note": proxy_note(space, config.resolution),
        "latency": "measured on the device" if measured_ms is not None else PREDICTED_ONLY,
        "space_range_ms": [low, high],
        "config": _spnas_config(config),
        "result": {
            "architecture": list(result.architecture),
            "labels": list(result.labels),
            "target_ms": config.target_ms,
            "predicted_ms": predicted_ms,
            "uncertainty_ms": prediction.uncertainty_ms[0],
            "measured_ms": measured_ms,
            "predicted_error_pct": _pct(predicted_ms, config.target_ms),
            "measured_error_pct": None
            if measured_ms is None
            else _pct(measured_ms, config.target_ms),
            "runtime_term_ms": result.runtime_ms,
            "proxy_accuracy": result.val_accuracy,
            "estimated_layers": list(prediction.estimated_layers),
        },
        "decoded": {
            "architecture": list(result.decoded),
            "runtime_term_ms": result.decoded_ms,
            "predicted_ms": prediction.latency_ms[-1],
        },
        "landing": None
        if result.landing is None
        else {
            "within_tolerance": result.landing.within_tolerance,
            "flips": [
                {"position": f.position, "from": f.before, "to": f.after, "delta_ms": f.delta_ms}
                for f in result.landing.flips
            ],
        },
        "epochs": [_epoch(log) for log in result.epochs],
        "service_calls": _calls(source),
        "wall_s": time.monotonic() - started,
        "search_s": result.wall_s,
    }


def figs_run(
    source: ChannelCostSource,
    device_id: int,
    space: SearchSpace,
    config: FigsConfig,
    *,
    flops_twin: bool = False,
    measuring: Measuring | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """FiGS to ``config.target`` ms on the device; with ``flops_twin``, the same search on
    MorphNet's FLOP cost, steered to the FLOPs the latency search found. Both results are
    predicted by the service and, with ``measuring``, measured in one job."""
    started = time.monotonic()
    cost = source.channel_cost(device_id, space.name)
    searches = 2 if flops_twin else 1

    def phase(n: int) -> Callable[[int, int, FigsEpoch | None], None] | None:
        if progress is None:
            return None
        report = progress
        return lambda step, total, _log: report(n * total + step, searches * total)

    runs = [("latency", run_figs(space, cost, config, phase(0)))]
    flops = ChannelCostModule(flop_cost(cost, space))
    if flops_twin:
        twin = replace(config, target=flops.of(runs[0][1].architecture))
        runs.append(("flops", run_figs(space, flops.cost, twin, phase(1))))
    archs = [list(r.architecture) for _, r in runs]
    prediction = source.predict(device_id, space.name, archs)
    measured: list[float | None] = [None] * len(runs)
    if measuring is not None:
        measured = list(
            measuring.measurer.measure(
                device_id,
                space.name,
                archs,
                timeout_s=measuring.timeout_s,
                settings=measuring.settings,
                run_agent=measuring.run_agent,
            )
        )
    results = [
        _figs_result(space, kind, result, flops, prediction, n, measured[n], config.target)
        for n, (kind, result) in enumerate(runs)
    ]
    return {
        "search": "figs",
        "device_id": device_id,
        "space": space.name,
        "predictor_version": prediction.predictor_version,
        "channel_cost_version": cost.predictor_version,
        "note": proxy_note(space, config.resolution),
        "latency": "measured on the device" if measuring is not None else PREDICTED_ONLY,
        "config": _figs_config(config),
        "decisions": [
            {"name": d.name, "kind": d.kind, "max_channels": v}
            for d, v in zip(cost.decisions, flops.channels_of(flops.widest()), strict=True)
        ],
        "result": results[0],
        "flops_twin": results[1] if flops_twin else None,
        "service_calls": _calls(source),
        "wall_s": time.monotonic() - started,
    }


def _figs_result(
    space: SearchSpace,
    kind: str,
    result: FigsResult,
    flops: ChannelCostModule,
    prediction: Prediction,
    n: int,
    measured_ms: float | None,
    target_ms: float,
) -> dict[str, Any]:
    predicted_ms = prediction.latency_ms[n]
    return {
        "cost": kind,
        "unit": result.unit,
        "target": result.target,
        "architecture": list(result.architecture),
        "labels": list(figs_labels(space, result.architecture)),
        "channels": list(result.channels),
        "held_values": list(result.held_values),
        "mflops": flops.of(result.architecture),
        "cost_value": result.cost,
        "target_ms": target_ms,
        "predicted_ms": predicted_ms,
        "uncertainty_ms": prediction.uncertainty_ms[n],
        "measured_ms": measured_ms,
        "predicted_error_pct": _pct(predicted_ms, target_ms),
        "measured_error_pct": None if measured_ms is None else _pct(measured_ms, target_ms),
        "proxy_accuracy": result.val_accuracy,
        "decoded": {"architecture": list(result.decoded), "cost_value": result.decoded_cost},
        "landing": None
        if result.within_tolerance is None
        else {
            "within_tolerance": result.within_tolerance,
            "moves": [
                {"decision": m.decision, "from": m.before, "to": m.after, "delta": m.delta}
                for m in result.moves
            ],
        },
        "epochs": [
            {
                "epoch": e.epoch,
                "lambda": e.lambda_value,
                "held_cost": e.held_cost,
                "cross_entropy": e.cross_entropy,
                "train_accuracy": e.train_accuracy,
                "seconds": e.seconds,
            }
            for e in result.epochs
        ],
        "search_s": result.wall_s,
    }


def load_or_train_supernet(
    space: SearchSpace,
    resolution: int,
    config: OneShotConfig,
    path: Path | None,
    progress: Callable[[int, int], None] | None = None,
) -> OneShotSupernet:
    """The supernet in ``path`` if it exists; else trained (and saved there if given)."""
    if path is not None and path.exists():
        supernet = load(space, path)
        if supernet.resolution != resolution:
            raise UserInputError(
                f"{path} was trained at {supernet.resolution} px; pass --resolution "
                f"{supernet.resolution} or another --supernet file"
            )
        return supernet
    digits = load_digits(resolution, space.input_channels, config.seed)
    supernet = train_one_shot(space, digits, config, progress)
    if path is not None:
        save(supernet, path)
    return supernet


def pareto_run(
    source: LatencySource,
    device_id: int,
    space: SearchSpace,
    config: ParetoConfig,
    supernet: OneShotSupernet,
    *,
    measuring: Measuring | None = None,
    progress: Callable[[int, int], None] | None = None,
    table: RuntimeTable | None = None,
    compare_random: int = 0,
) -> tuple[dict[str, Any], ParetoResult]:
    """``compare_random``: also score that many random architectures of the space (seeded by
    ``config.seed``) and compare their hypervolume with the study's, at one reference point;
    the result's ``random`` holds them."""
    started = time.monotonic()
    table = table or device_table(source, device_id, space)
    if compare_random < 0:
        raise UserInputError(f"--compare-random {compare_random}: give 0 (off) or more")
    config.limits.require_reachable(table)
    low, high = table.range_ms()
    digits = load_digits(supernet.resolution, space.input_channels, supernet.config.seed)
    result = run_pareto(
        space, device_id, table.predictor_version, source, supernet, digits, config, progress
    )
    random_points: list[Scored] = []
    if compare_random:
        sample = space.sample(compare_random, seed=config.seed + RANDOM_SEED_OFFSET)
        random_points = score(
            space,
            device_id,
            source,
            supernet,
            digits,
            sample.tolist(),
            config.metrics,
            table.predictor_version,
        )
        result = replace(result, random=tuple(random_points))
    measured: list[NetworkMeasured | None] = [None] * len(result.front)
    if measuring is not None and result.front:
        # The front is measured for every metric the search predicted, in one job.
        measured = list(
            measuring.measurer.measure_networks(
                device_id,
                space.name,
                [list(r.architecture) for r in result.front],
                timeout_s=measuring.timeout_s,
                settings=measuring.settings,
                run_agent=measuring.run_agent,
                metrics=[d for m in config.metrics if (d := m.device_metric) is not None],
            )
        )
    front = [
        {
            **r.to_dict(),
            "measured_ms": None if m is None else m.latency_ms,
            "prediction_error_pct": None if m is None else _pct(r.latency_ms, m.latency_ms),
            **_measured_metrics(r, m),
        }
        for r, m in zip(result.front, measured, strict=True)
    ]
    report = {
        "search": "pareto",
        "device_id": device_id,
        "space": space.name,
        "predictor_version": table.predictor_version,
        "study": config.study_name,
        "storage": "in memory" if config.storage is None else _redact(config.storage),
        "worker": result.worker,
        "sampler": f"NSGA-II, population {config.population}, seed {result.sampler_seed}",
        "note": proxy_note(space, supernet.resolution),
        "accuracy_estimate": ONE_SHOT_NOTE,
        "latency": "front measured on the device" if measuring is not None else PREDICTED_ONLY,
        "supernet": {
            "sha256": supernet.sha256,
            "epochs": supernet.config.epochs,
            "resolution": supernet.resolution,
        },
        "objectives": objective_names(config.objectives),
        "constraints": config.limits.to_dict(),
        "units": {
            name: UNIT_NOTES[name] for name in ("accuracy", *(m.field for m in config.metrics))
        },
        "trials_requested": config.trials,
        "trials_in_study": len(result.trials),
        "trials_feasible": len(result.feasible),
        "trials_running_elsewhere": result.running_elsewhere,
        "evaluated_here": result.evaluated_here,
        "hypervolume": _hypervolume(config, result, random_points, compare_random, high),
        "space_range_ms": [low, high],
        "front": front,
        "trials": [r.to_dict() for r in result.trials],
        "service_calls": _calls(source),
        "wall_s": time.monotonic() - started,
    }
    return report, result


# The random sample of --compare-random is drawn with the search's seed plus this, so that it is
# not the sampler's own first population (NSGA-II seeds with seed + worker and starts random).
RANDOM_SEED_OFFSET = 10_007


def _hypervolume(
    config: ParetoConfig,
    result: ParetoResult,
    random_points: list[Scored],
    compare_random: int,
    slowest_ms: float,
) -> dict[str, Any]:
    """The study's hypervolume over its feasible trials; with a random comparison, the random
    sample's too, both at one reference point beyond the worst of either.

    Without a comparison the reference is accuracy 0, for latency the slowest the space can be
    (the runtime table's bound, as ever), and for memory and energy 1.1 x the worst feasible
    trial, since nothing bounds those but the trials themselves."""
    objectives = config.objectives
    trials = [r.scored() for r in result.feasible]
    if compare_random:
        feasible_random = [p for p in random_points if config.limits.met_by(p.metric_values())]
        reference = Reference.beyond_worst([trials, feasible_random], objectives)
    else:
        beyond = Reference.beyond_worst([trials], objectives)
        worst = dict(beyond.worst) if beyond is not None else {}
        reference = Reference(
            0.0,
            tuple(
                (m, slowest_ms if m is Objective.latency else worst[m])
                for m in objectives
                if m is Objective.latency or m in worst
            ),
        )
        if len(reference.worst) != len(objectives):  # no feasible trial to bound memory by
            reference = None
    value = 0.0 if reference is None else front_hypervolume(trials, reference)
    report: dict[str, Any] = {
        "value": value,
        "reference": None if reference is None else reference.to_dict(),
        "unit": hypervolume_unit(objectives),
    }
    if config.limits.items():
        report["over"] = "feasible trials only"
    if compare_random:
        random_value = 0.0 if reference is None else front_hypervolume(feasible_random, reference)
        report["random"] = {
            "architectures": compare_random,
            "seed": config.seed + RANDOM_SEED_OFFSET,
            "feasible": len(feasible_random),
            "front_size": len(pareto_front(feasible_random, objectives)),
            "value": random_value,
            "ratio": value / random_value if random_value > 0 else None,
        }
    return report


def _measured_metrics(record: TrialRecord, measured: NetworkMeasured | None) -> dict[str, Any]:
    """A front point's measured memory and energy beside its predicted ones, where predicted."""
    if measured is None:
        return {}
    row: dict[str, Any] = {}
    pairs = (
        ("peak_memory_mb", "memory", record.peak_memory_mb, measured.peak_memory_mb),
        ("energy_mj", "energy", record.energy_mj, measured.energy_mj),
    )
    for name, metric, predicted, value in pairs:
        if predicted is None:
            continue
        row[f"measured_{name}"] = value
        row[f"{metric}_error_pct"] = None if value is None else _pct(predicted, value)
    return row


def scored_trials(result: ParetoResult) -> list[Scored]:
    return [r.scored() for r in result.trials]


def _figs_config(config: FigsConfig) -> dict[str, Any]:
    return {
        "epochs": config.epochs,
        "warmup_epochs": config.warmup_epochs,
        "batch_size": config.batch_size,
        "resolution": config.resolution,
        "temperature": config.temperature,
        "gate_lr": config.gate_lr,
        "tolerance": config.tolerance,
        "lambda_step": config.lambda_step,
        "lambda_proportional": config.lambda_proportional,
        "seed": config.seed,
    }


def _spnas_config(config: SpnasConfig) -> dict[str, Any]:
    return {
        "epochs": config.epochs,
        "warmup_epochs": config.warmup_epochs,
        "batch_size": config.batch_size,
        "resolution": config.resolution,
        "formula": config.formula.value,
        "tolerance": config.tolerance,
        "lambda_step": config.lambda_step,
        "lambda_proportional": config.lambda_proportional,
        "seed": config.seed,
    }


def _epoch(log: EpochLog) -> dict[str, Any]:
    return {
        "epoch": log.epoch,
        "lambda": log.lambda_value,
        "runtime_ms": log.runtime_ms,
        "cross_entropy": log.cross_entropy,
        "train_accuracy": log.train_accuracy,
        "architecture": list(log.architecture),
        "seconds": log.seconds,
    }


def _calls(source: LatencySource) -> dict[str, int] | None:
    if isinstance(source, ServiceLatencySource):
        calls = source.calls
        return {
            "runtime_table": calls.runtime_table,
            "channel_cost": calls.channel_cost,
            "predict": calls.predict,
            "predicted_architectures": calls.predicted_architectures,
            "measuring_jobs": calls.jobs,
        }
    return None


def _pct(value: float, reference: float) -> float:
    return 100.0 * (value - reference) / reference


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


__all__ = [
    "Measuring",
    "SpnasResult",
    "figs_run",
    "load_or_train_supernet",
    "pareto_run",
    "spnas_run",
]
