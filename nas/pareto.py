"""Pareto search (the MONAS / DPP-Net idea): NSGA-II over a space, accuracy against latency,
peak memory and energy.

Objectives, per architecture:

- accuracy (maximised): the one-shot estimate of :mod:`nas.one_shot`, validation accuracy on
  the digits proxy task of the path inherited from a weight-sharing supernet;
- latency, peak memory, energy (minimised; latency alone by default, see
  :mod:`nas.objectives`): the device's predictions from the service, asked for a whole
  population per request (``POST /v1/predict``), never one architecture at a time.

Limits on the metrics (``--max-memory-mb``...) are NSGA-II constraints (each trial's excess
over each limit, <= 0 feasible): infeasible trials stay
in the study (the sampler ranks them behind every feasible one) but never on the front.

Optuna's ask/tell interface drives NSGA-II a population at a time. With an RDB storage several
processes, on several machines, share one study: each counts and asks under the study's lock
(:mod:`nas.study_lock`), so together they finish exactly the requested number of trials, and
each trial is evaluated by the one process that asked it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from latency_api import ErrorCode, ServiceError
from models import SearchSpace
from models.errors import UserInputError
from nas.digits import Digits
from nas.evaluation import path_accuracy
from nas.front import Scored, pareto_front
from nas.latency import LatencySource
from nas.objectives import (
    ACCURACY,
    DEFAULT_OBJECTIVES,
    Limits,
    Objective,
    device_metrics,
    metrics_needed,
    objective_names,
)
from nas.one_shot import OneShotSupernet
from nas.study_lock import StudyLock

# Trials that count against the budget: finished ones and those some process is evaluating.
BUDGET_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


def directions(objectives: Sequence[Objective]) -> list[optuna.study.StudyDirection]:
    """Accuracy up, then each metric down."""
    maximize, minimize = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    return [maximize, *(minimize for _ in objectives)]


DIRECTIONS = directions(DEFAULT_OBJECTIVES)
# What a study stored before objectives and limits were recorded with it was scored with.
_LEGACY_IDENTITY = {"objectives": [ACCURACY, Objective.latency.value], "constraints": {}}


class StudyMismatch(UserInputError):
    """A process joining a study with a different space, device, predictor or supernet."""


@dataclass(frozen=True)
class ParetoConfig:
    trials: int
    population: int = 16
    seed: int = 0
    storage: str | None = None
    study_name: str = "hwlat-pareto"
    # When its share is done, wait this long for other processes' running trials, so that
    # the report covers the whole budget.
    wait_for_peers_s: float = 600.0
    # The minimised objectives beside accuracy (nas.objectives.parse_objectives reads them).
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UserInputError(f"--trials {self.trials}: ask for at least one trial")
        if self.population < 2:
            raise UserInputError(f"--population {self.population}: NSGA-II needs at least 2")
        if not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise UserInputError(
                f"objectives {objective_names(self.objectives)}: give one or more of "
                f"{', '.join(m.value for m in Objective)} beside accuracy, each once"
            )

    @property
    def metrics(self) -> tuple[Objective, ...]:
        """Every metric to predict: the objectives' and the limits'."""
        return metrics_needed(self.objectives, self.limits)


@dataclass(frozen=True)
class TrialRecord:
    number: int
    architecture: tuple[int, ...]
    labels: tuple[str, ...]
    accuracy: float
    latency_ms: float
    uncertainty_ms: float
    worker: int
    # None when the study did not predict them (neither an objective nor limited).
    peak_memory_mb: float | None = None
    energy_mj: float | None = None

    def scored(self) -> Scored:
        return Scored(
            self.architecture, self.accuracy, self.latency_ms, self.peak_memory_mb, self.energy_mj
        )

    def metric_values(self) -> dict[Objective, float | None]:
        return self.scored().metric_values()

    def to_dict(self) -> dict[str, Any]:
        """Every predicted metric; one the study did not predict is left out, so a study of
        accuracy and latency reports exactly what it did before memory and energy existed."""
        extra = {
            m.field: v
            for m, v in self.metric_values().items()
            if m is not Objective.latency and v is not None
        }
        return {
            "trial": self.number,
            "architecture": list(self.architecture),
            "labels": list(self.labels),
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
            **extra,
            "uncertainty_ms": self.uncertainty_ms,
            "worker": self.worker,
        }


@dataclass(frozen=True)
class ParetoResult:
    study_name: str
    worker: int
    sampler_seed: int
    evaluated_here: int
    trials: tuple[TrialRecord, ...]  # every complete trial of the study, by number
    feasible: tuple[TrialRecord, ...]  # those meeting every limit (all, without limits)
    front: tuple[TrialRecord, ...]  # the feasible ones' front, by the first objective
    running_elsewhere: int  # trials other processes had not finished when this one stopped
    wall_s: float
    # Random architectures scored the same way, when a comparison was asked for (nas.runs).
    random: tuple[Scored, ...] = ()


def layer_param(position: int) -> str:
    return f"layer_{position:02d}"


def param_names(space: SearchSpace) -> list[str]:
    """One Optuna parameter per decision: ``layer_NN`` in a space of fixed shapes (the names
    studies stored before spaces were data use), the decision's name in an elastic one."""
    if space.fixed_shape:
        return [layer_param(n) for n in range(space.num_layers)]
    return [d.name for d in space.decisions]


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    return {
        name: CategoricalDistribution(list(decision.choices))
        for name, decision in zip(param_names(space), space.decisions, strict=True)
    }


def architecture_of(space: SearchSpace, params: dict[str, Any]) -> tuple[int, ...]:
    return tuple(
        decision.choices.index(str(params[name]))
        for name, decision in zip(param_names(space), space.decisions, strict=True)
    )


def run_pareto(
    space: SearchSpace,
    device_id: int,
    predictor_version: int,
    source: LatencySource,
    supernet: OneShotSupernet,
    digits: Digits,
    config: ParetoConfig,
    progress: Callable[[int, int], None] | None = None,
) -> ParetoResult:
    """Run trials until the study holds ``config.trials`` of them (counting other processes')."""
    started = time.monotonic()
    if supernet.resolution != digits.resolution:
        raise UserInputError(
            f"the supernet was trained at {supernet.resolution} px, the data is at "
            f"{digits.resolution} px; use the same --resolution"
        )
    lock = StudyLock(config.storage, config.study_name)
    try:
        expected = {
            "space": space.name,
            "device_id": device_id,
            "predictor_version": predictor_version,
            "supernet_sha256": supernet.sha256,
            "resolution": supernet.resolution,
            # The study's identity: its objectives, and its limits, which make trials feasible.
            "objectives": objective_names(config.objectives),
            "constraints": config.limits.to_dict(),
        }
        storage = _storage(config)
        with lock.hold():
            worker = _join(config, storage, expected)
        sampler_seed = config.seed + worker
        study = optuna.load_study(
            study_name=config.study_name,
            storage=storage,
            sampler=optuna.samplers.NSGAIISampler(
                population_size=config.population, seed=sampler_seed
            ),
        )
        evaluated = _loop(
            study,
            space,
            device_id,
            predictor_version,
            source,
            supernet,
            digits,
            config,
            lock,
            worker,
            progress,
        )
        _wait_for_peers(study, config, progress)
    finally:
        lock.close()
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    records = tuple(_record(space, t) for t in study.get_trials(states=(TrialState.COMPLETE,)))
    feasible = tuple(r for r in records if config.limits.met_by(r.metric_values()))
    by_arch = {r.scored(): r for r in feasible}
    front = tuple(by_arch[s] for s in pareto_front(list(by_arch), config.objectives))
    return ParetoResult(
        study_name=config.study_name,
        worker=worker,
        sampler_seed=sampler_seed,
        evaluated_here=evaluated,
        trials=records,
        feasible=feasible,
        front=front,
        running_elsewhere=running,
        wall_s=time.monotonic() - started,
    )


def _storage(config: ParetoConfig) -> str | optuna.storages.BaseStorage:
    if config.storage is not None:
        return config.storage
    # In memory: this run's own, so that a second search in the same process (a notebook, the
    # tests' in-process CLI) starts a new study instead of joining the first one's.
    return optuna.storages.InMemoryStorage()


def _join(
    config: ParetoConfig, storage: str | optuna.storages.BaseStorage, expected: dict[str, Any]
) -> int:
    """Create or load the study, check it matches, take the next worker index (under lock)."""
    wanted = directions(config.objectives)
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        directions=wanted,
        load_if_exists=True,
    )
    attrs = study.user_attrs
    if "workers" in attrs:  # joined before: fill in what older studies did not record
        attrs = {**_LEGACY_IDENTITY, **attrs}
    stored = attrs.get("objectives")
    mine = expected["objectives"]
    if (stored is not None and stored != mine) or list(study.directions) != wanted:
        theirs = ",".join(stored) if stored else f"{len(study.directions)} objectives"
        raise StudyMismatch(
            f"study {config.study_name} has objectives {theirs}, this process asks for "
            f"{','.join(mine)}; pass --objectives {theirs} to join it, or start a new --study"
        )
    for key, value in expected.items():
        if key in attrs and attrs[key] != value:
            raise StudyMismatch(
                f"study {config.study_name} was scored with {key}={attrs[key]!r}, this process "
                f"has {value!r}; join with the same settings (and --supernet file) or start a "
                "new --study"
            )
        study.set_user_attr(key, value)
    worker = int(attrs.get("workers", 0))
    study.set_user_attr("workers", worker + 1)
    return worker


def _loop(
    study: optuna.Study,
    space: SearchSpace,
    device_id: int,
    predictor_version: int,
    source: LatencySource,
    supernet: OneShotSupernet,
    digits: Digits,
    config: ParetoConfig,
    lock: StudyLock,
    worker: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    dists = distributions(space)
    metrics = config.metrics
    accuracy_cache: dict[tuple[int, ...], float] = {}
    evaluated = 0
    while True:
        with lock.hold():
            held = len(study.get_trials(deepcopy=False, states=BUDGET_STATES))
            batch = min(config.population, config.trials - held)
            asked = [study.ask(dists) for _ in range(max(batch, 0))]
        if not asked:
            break
        try:
            archs = [architecture_of(space, t.params) for t in asked]
            for arch in archs:
                if arch not in accuracy_cache:
                    d = supernet.model.path(arch)
                    accuracy_cache[arch] = path_accuracy(supernet.model, digits, d)
            # One request per population; repeats inside it are asked once.
            distinct = list(dict.fromkeys(archs))
            predicted = dict(
                zip(
                    distinct,
                    predict_batch(
                        source, device_id, space.name, distinct, metrics, predictor_version
                    ),
                    strict=True,
                )
            )
        except BaseException:
            # Failed trials leave the budget, so another process (or a rerun) redoes them.
            for trial in asked:
                study.tell(trial, state=TrialState.FAIL)
            raise
        for trial, arch in zip(asked, archs, strict=True):
            # Every predicted metric, objective or not, so a record is rebuilt from the attrs
            # whatever the objectives (and the limits are checked from them).
            for name, value in predicted[arch].attrs().items():
                trial.set_user_attr(name, value)
            trial.set_user_attr("worker", worker)
            # NSGA-II's constraints, one per limit (<= 0 feasible): it ranks every feasible
            # trial before any infeasible one. (Optuna 5 stores them with the trial this way;
            # the sampler's constraints_func is deprecated there.)
            for metric, excess in config.limits.excess(predicted[arch].metric_values()).items():
                trial.set_constraint(metric.field, excess)
            values = [predicted[arch].value(m) for m in config.objectives]
            study.tell(trial, [accuracy_cache[arch], *values])
        evaluated += len(asked)
        if progress is not None:
            done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            progress(min(done, config.trials), config.trials)
    return evaluated


def _wait_for_peers(
    study: optuna.Study, config: ParetoConfig, progress: Callable[[int, int], None] | None
) -> None:
    deadline = time.monotonic() + config.wait_for_peers_s
    while True:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        running = sum(t.state is TrialState.RUNNING for t in trials)
        if progress is not None:
            progress(min(len(trials) - running, config.trials), config.trials)
        if running == 0 or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _record(space: SearchSpace, trial: optuna.trial.FrozenTrial) -> TrialRecord:
    arch = architecture_of(space, trial.params)
    values: Sequence[float] = trial.values
    attrs = trial.user_attrs
    # Studies from before the metrics were stored as attrs hold latency as their 2nd value.
    latency_ms = attrs["latency_ms"] if "latency_ms" in attrs else values[1]
    return TrialRecord(
        number=trial.number,
        architecture=arch,
        labels=tuple(d.choices[i] for d, i in zip(space.decisions, arch, strict=True)),
        accuracy=float(values[0]),
        latency_ms=float(latency_ms),
        uncertainty_ms=float(attrs.get("uncertainty_ms", float("nan"))),
        worker=int(attrs.get("worker", -1)),
        peak_memory_mb=_optional(attrs.get(Objective.memory.field)),
        energy_mj=_optional(attrs.get(Objective.energy.field)),
    )


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Predicted:
    """The service's prediction of one architecture: latency, and the metrics asked for."""

    latency_ms: float
    uncertainty_ms: float
    peak_memory_mb: float | None = None
    energy_mj: float | None = None

    def value(self, metric: Objective) -> float:
        value: float | None = getattr(self, metric.field)
        if value is None:
            raise ValueError(f"{metric.field} was not asked of the service")
        return value

    def metric_values(self) -> dict[Objective, float | None]:
        return {m: getattr(self, m.field) for m in Objective}

    def attrs(self) -> dict[str, float]:
        named = {"latency_ms": self.latency_ms, "uncertainty_ms": self.uncertainty_ms}
        named.update({m.field: v for m in Objective if (v := getattr(self, m.field)) is not None})
        return named


def predict_batch(
    source: LatencySource,
    device_id: int,
    space: str,
    architectures: Sequence[tuple[int, ...]],
    metrics: Sequence[Objective],
    predictor_version: int | None = None,
) -> list[Predicted]:
    """One predict request for every architecture, asking for exactly ``metrics`` beside
    latency; with ``predictor_version``, refused if the device's predictor is another."""
    asked = device_metrics(metrics)
    prediction = source.predict(device_id, space, [list(a) for a in architectures], asked)
    if predictor_version is not None and prediction.predictor_version != predictor_version:
        raise ServiceError(
            409,
            ErrorCode.predictor_changed,
            f"the device's predictor changed from v{predictor_version} to "
            f"v{prediction.predictor_version} during the study; predictions would mix "
            "versions, so start a new --study",
        )
    n = len(architectures)
    columns: dict[Objective, tuple[float, ...] | None] = {
        Objective.memory: prediction.peak_memory_mb,
        Objective.energy: prediction.energy_mj,
    }
    for metric, column in columns.items():
        if metric in metrics and (column is None or len(column) != n):
            raise ServiceError(
                502,
                ErrorCode.internal_error,
                f"the service was asked for {metric.value} of {n} architectures and answered "
                f"{'none' if column is None else len(column)}",
            )
    memory = prediction.peak_memory_mb if Objective.memory in metrics else None
    energy = prediction.energy_mj if Objective.energy in metrics else None
    return [
        Predicted(
            prediction.latency_ms[i],
            prediction.uncertainty_ms[i],
            None if memory is None else memory[i],
            None if energy is None else energy[i],
        )
        for i in range(n)
    ]


def score(
    space: SearchSpace,
    device_id: int,
    source: LatencySource,
    supernet: OneShotSupernet,
    digits: Digits,
    architectures: Sequence[Sequence[int]],
    metrics: Sequence[Objective] = DEFAULT_OBJECTIVES,
    predictor_version: int | None = None,
) -> list[Scored]:
    """Score architectures the way the study does (one predict request, the same metrics, the
    same predictor version when given): for baselines."""
    archs = [space.validate(a) for a in architectures]
    predicted = predict_batch(source, device_id, space.name, archs, metrics, predictor_version)
    with torch.no_grad():
        accuracies = [path_accuracy(supernet.model, digits, supernet.model.path(a)) for a in archs]
    return [
        Scored(a, acc, p.latency_ms, p.peak_memory_mb, p.energy_mj)
        for a, acc, p in zip(archs, accuracies, predicted, strict=True)
    ]
