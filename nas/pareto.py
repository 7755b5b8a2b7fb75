"""Pareto search (the MONAS / DPP-Net idea): NSGA-II over a space, accuracy against latency.

Objectives, per architecture:

- accuracy (maximised): the one-shot estimate of :mod:`nas.one_shot`, validation accuracy on
  the digits proxy task of the path inherited from a weight-sharing supernet;
- latency (minimised): the device's predicted latency from the service, asked for a whole
  population per request (``POST /v1/predict``), never one architecture at a time.

Optuna's ask/tell interface drives NSGA-II a population at a time. With an RDB storage several
processes, on several machines, share one study: each counts and asks under the study's lock
(:mod:`nas.study_lock`), so together they finish exactly the requested number of trials, and
each trial is evaluated by the one process that asked it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from nas.one_shot import OneShotSupernet
from nas.study_lock import StudyLock

# Trials that count against the budget: finished ones and those some process is evaluating.
BUDGET_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
DIRECTIONS = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]


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

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UserInputError(f"--trials {self.trials}: ask for at least one trial")
        if self.population < 2:
            raise UserInputError(f"--population {self.population}: NSGA-II needs at least 2")


@dataclass(frozen=True)
class TrialRecord:
    number: int
    architecture: tuple[int, ...]
    labels: tuple[str, ...]
    accuracy: float
    latency_ms: float
    uncertainty_ms: float
    worker: int

    def scored(self) -> Scored:
        return Scored(self.architecture, self.accuracy, self.latency_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "architecture": list(self.architecture),
            "labels": list(self.labels),
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
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
    front: tuple[TrialRecord, ...]  # fastest first
    running_elsewhere: int  # trials other processes had not finished when this one stopped
    wall_s: float


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
        }
        with lock.hold():
            worker = _join(config, expected)
        sampler_seed = config.seed + worker
        study = optuna.load_study(
            study_name=config.study_name,
            storage=_storage(config),
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
    by_arch = {r.scored(): r for r in records}
    front = tuple(by_arch[s] for s in pareto_front(list(by_arch)))
    return ParetoResult(
        study_name=config.study_name,
        worker=worker,
        sampler_seed=sampler_seed,
        evaluated_here=evaluated,
        trials=records,
        front=front,
        running_elsewhere=running,
        wall_s=time.monotonic() - started,
    )


_MEMORY_STORAGES: dict[str, optuna.storages.InMemoryStorage] = {}


def _storage(config: ParetoConfig) -> str | optuna.storages.BaseStorage:
    if config.storage is not None:
        return config.storage
    # One in-memory storage per study name, so that load_study finds what _join created.
    return _MEMORY_STORAGES.setdefault(config.study_name, optuna.storages.InMemoryStorage())


def _join(config: ParetoConfig, expected: dict[str, Any]) -> int:
    """Create or load the study, check it matches, take the next worker index (under lock)."""
    study = optuna.create_study(
        study_name=config.study_name,
        storage=_storage(config),
        directions=DIRECTIONS,
        load_if_exists=True,
    )
    if list(study.directions) != DIRECTIONS:
        raise StudyMismatch(
            f"study {config.study_name} exists with other objectives; choose another --study"
        )
    attrs = study.user_attrs
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
            prediction = source.predict(device_id, space.name, [list(a) for a in distinct])
            if prediction.predictor_version != predictor_version:
                raise ServiceError(
                    409,
                    ErrorCode.predictor_changed,
                    f"the device's predictor changed from v{predictor_version} to "
                    f"v{prediction.predictor_version} during the study; latencies would mix "
                    "versions, so start a new --study",
                )
            latency = dict(zip(distinct, prediction.latency_ms, strict=True))
            uncertainty = dict(zip(distinct, prediction.uncertainty_ms, strict=True))
        except BaseException:
            # Failed trials leave the budget, so another process (or a rerun) redoes them.
            for trial in asked:
                study.tell(trial, state=TrialState.FAIL)
            raise
        for trial, arch in zip(asked, archs, strict=True):
            trial.set_user_attr("uncertainty_ms", uncertainty[arch])
            trial.set_user_attr("worker", worker)
            study.tell(trial, [accuracy_cache[arch], latency[arch]])
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
    return TrialRecord(
        number=trial.number,
        architecture=arch,
        labels=tuple(d.choices[i] for d, i in zip(space.decisions, arch, strict=True)),
        accuracy=float(values[0]),
        latency_ms=float(values[1]),
        uncertainty_ms=float(trial.user_attrs.get("uncertainty_ms", float("nan"))),
        worker=int(trial.user_attrs.get("worker", -1)),
    )


def score(
    space: SearchSpace,
    device_id: int,
    source: LatencySource,
    supernet: OneShotSupernet,
    digits: Digits,
    architectures: Sequence[Sequence[int]],
) -> list[Scored]:
    """Score architectures the way the study does (one predict request): for baselines."""
    archs = [space.validate(a) for a in architectures]
    prediction = source.predict(device_id, space.name, [list(a) for a in archs])
    with torch.no_grad():
        accuracies = [path_accuracy(supernet.model, digits, supernet.model.path(a)) for a in archs]
    return [
        Scored(a, acc, ms)
        for a, acc, ms in zip(archs, accuracies, prediction.latency_ms, strict=True)
    ]
