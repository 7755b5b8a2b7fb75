"""Pareto search on a fixed table: batched predictions, an exact trial budget, a true front."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from latency_api.schemas.enums import DeviceMetric
from models import get_space
from models.errors import UserInputError
from nas.digits import load_digits
from nas.front import (
    Reference,
    Scored,
    front_hypervolume,
    hypervolume,
    hypervolume_of,
    non_dominated,
    pareto_front,
)
from nas.latency import NetworkMeasured
from nas.objectives import DEFAULT_OBJECTIVES, Limits, Objective, metrics_needed, parse_objectives
from nas.one_shot import OneShotConfig, load, save, train_one_shot
from nas.pareto import ParetoConfig, StudyMismatch, TrialRecord, run_pareto
from nas.plot import plot_front, plot_fronts
from nas.runs import Measuring, pareto_run
from tests.nas_tables import TableSource, energy_mj, peak_memory_mb, table_for

TINY = get_space("tiny-64")
RESOLUTION = 12


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models: a second thread only adds contention with the other test workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_front_keeps_exactly_the_non_dominated_points() -> None:
    points = [
        Scored((0,), 0.5, 10.0),
        Scored((1,), 0.7, 20.0),
        Scored((2,), 0.6, 25.0),  # dominated by (1,): slower and less accurate
        Scored((3,), 0.7, 30.0),  # as accurate as (1,) but slower
        Scored((4,), 0.9, 40.0),
        Scored((5,), 0.4, 10.0),  # as fast as (0,) but less accurate
    ]
    assert [p.architecture for p in pareto_front(points)] == [(0,), (1,), (4,)]


def test_hypervolume_is_the_dominated_area() -> None:
    points = [Scored((0,), 0.5, 10.0), Scored((1,), 0.8, 30.0)]
    # 0.5 x (30 - 10) + 0.8 x (50 - 30); a dominated point adds nothing.
    assert hypervolume(points, 0.0, 50.0) == pytest.approx(10.0 + 16.0)
    assert hypervolume([*points, Scored((2,), 0.4, 40.0)], 0.0, 50.0) == pytest.approx(26.0)
    assert hypervolume([Scored((3,), 0.9, 60.0)], 0.0, 50.0) == 0.0  # beyond the reference


@pytest.fixture(scope="module")
def supernet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    digits = load_digits(RESOLUTION, TINY.input_channels, seed=0)
    path = tmp_path_factory.mktemp("supernet") / "tiny.pt"
    save(train_one_shot(TINY, digits, OneShotConfig(epochs=1, seed=0)), path)
    return path


def test_a_study_runs_its_budget_in_population_sized_requests(supernet_file: Path) -> None:
    supernet = load(TINY, supernet_file)
    digits = load_digits(RESOLUTION, TINY.input_channels, seed=0)
    table = table_for(TINY)
    source = TableSource(table)
    config = ParetoConfig(trials=23, population=5, seed=1, study_name="unit-budget")
    result = run_pareto(TINY, 1, table.predictor_version, source, supernet, digits, config)
    assert len(result.trials) == 23
    assert [t.number for t in result.trials] == list(range(23))
    assert result.evaluated_here == 23
    assert source.predict_calls == 5  # 5 + 5 + 5 + 5 + 3: one request per population
    for trial in result.trials:
        assert trial.latency_ms == pytest.approx(table.latency_ms(trial.architecture))
        assert 0.0 <= trial.accuracy <= 1.0
    scored = [t.scored() for t in result.trials]
    front = [t.scored() for t in result.front]
    assert front == pareto_front(scored)
    for point in front:  # nothing in the study beats a front point on both objectives
        assert not any(
            p.accuracy >= point.accuracy
            and p.latency_ms <= point.latency_ms
            and (p.accuracy, p.latency_ms) != (point.accuracy, point.latency_ms)
            for p in scored
        )


def test_joining_a_study_with_another_supernet_is_refused(
    supernet_file: Path, tmp_path: Path
) -> None:
    digits = load_digits(RESOLUTION, TINY.input_channels, seed=0)
    table = table_for(TINY)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = ParetoConfig(trials=4, population=2, storage=storage, study_name="shared")
    first = load(TINY, supernet_file)
    run_pareto(TINY, 1, 1, TableSource(table), first, digits, config)
    other = train_one_shot(TINY, digits, OneShotConfig(epochs=1, seed=7))
    with pytest.raises(StudyMismatch, match="supernet_sha256"):
        run_pareto(TINY, 1, 1, TableSource(table), other, digits, config)
    # The same supernet joins, and the budget counts the first run's trials.
    more = dataclasses.replace(config, trials=6)
    again = run_pareto(TINY, 1, 1, TableSource(table), first, digits, more)
    assert again.evaluated_here == 2
    assert again.worker == 1
    assert len(again.trials) == 6


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    points = [Scored((0,), 0.5, 10.0), Scored((1,), 0.8, 30.0), Scored((2,), 0.6, 35.0)]
    path = tmp_path / "front.png"
    plot_front(path, points, title="t", accuracy_label="acc", latency_label="ms")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000


class FixedFactorMeasurer:
    """Stands in for an agent: 'measures' each network at 1.05 x its table latency and, when
    asked, 1.1 x the memory its source predicts."""

    def __init__(self, source: TableSource) -> None:
        self.source = source
        self.batches: list[list[list[int]]] = []
        self.metrics: list[list[DeviceMetric]] = []

    def measure_networks(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        timeout_s: float,
        settings: Mapping[str, Any] | None = None,
        run_agent: Callable[[], None] | None = None,
        metrics: Sequence[DeviceMetric] = (),
    ) -> list[NetworkMeasured]:
        self.batches.append([list(a) for a in architectures])
        self.metrics.append(list(metrics))
        return [
            NetworkMeasured(
                1.05 * self.source.table.latency_ms(a),
                1.1 * peak_memory_mb(TINY, a) if DeviceMetric.memory in metrics else None,
            )
            for a in architectures
        ]


def test_measure_puts_the_measured_front_beside_the_predicted(supernet_file: Path) -> None:
    source = TableSource(table_for(TINY))
    measurer = FixedFactorMeasurer(source)
    config = ParetoConfig(trials=8, population=4, study_name="unit-measure")
    report, result = pareto_run(
        source, 1, TINY, config, load(TINY, supernet_file), measuring=Measuring(measurer)
    )
    assert measurer.batches == [[list(r.architecture) for r in result.front]]  # one job
    assert measurer.metrics == [[]]  # latency only: nothing else was predicted
    assert report["latency"] == "front measured on the device"
    for row in report["front"]:
        assert row["measured_ms"] == pytest.approx(1.05 * row["latency_ms"])
        assert row["prediction_error_pct"] == pytest.approx(100 * (1 / 1.05 - 1))
        assert "measured_peak_memory_mb" not in row


def test_measure_puts_the_front_s_measured_memory_beside_its_predicted(
    supernet_file: Path,
) -> None:
    source = TableSource(table_for(TINY), TINY)
    measurer = FixedFactorMeasurer(source)
    config = ParetoConfig(
        trials=8,
        population=4,
        study_name="unit-measure-memory",
        objectives=(Objective.latency, Objective.memory),
    )
    report, _ = pareto_run(
        source, 1, TINY, config, load(TINY, supernet_file), measuring=Measuring(measurer)
    )
    assert measurer.metrics == [[DeviceMetric.memory]]  # the front's memory, in the same job
    for row in report["front"]:
        assert row["measured_peak_memory_mb"] == pytest.approx(1.1 * row["peak_memory_mb"])
        assert row["memory_error_pct"] == pytest.approx(100 * (1 / 1.1 - 1))
        assert "measured_energy_mj" not in row
    unmeasured, _ = pareto_run(
        source,
        1,
        TINY,
        dataclasses.replace(config, study_name="unit-predicted"),
        load(TINY, supernet_file),
    )
    assert unmeasured["latency"].startswith("predicted only")
    assert all(row["measured_ms"] is None for row in unmeasured["front"])


# -- several objectives ------------------------------------------------------------------------


def _old_pareto_front(points: Sequence[Scored]) -> list[Scored]:
    """The two-objective front as it was before the general one (kept to compare against)."""
    front: list[Scored] = []
    best_accuracy = float("-inf")
    for point in sorted(points, key=lambda p: (p.latency_ms, -p.accuracy)):
        if point.accuracy > best_accuracy:
            front.append(point)
            best_accuracy = point.accuracy
    return front


def _old_hypervolume(points: Sequence[Scored], reference_accuracy: float, ms: float) -> float:
    inside = [p for p in points if p.accuracy >= reference_accuracy and p.latency_ms <= ms]
    front = _old_pareto_front(inside)
    area = 0.0
    for n, point in enumerate(front):
        next_ms = front[n + 1].latency_ms if n + 1 < len(front) else ms
        area += (point.accuracy - reference_accuracy) * (next_ms - point.latency_ms)
    return area


def test_the_two_objective_case_is_the_old_front_and_hypervolume() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        # Coarse values, so that ties in accuracy, in latency and in both are common.
        points = [
            Scored((n,), float(rng.integers(0, 6)) / 5, float(rng.integers(1, 8)))
            for n in range(int(rng.integers(1, 15)))
        ]
        assert pareto_front(points) == _old_pareto_front(points)
        reference_ms = float(rng.integers(3, 9))
        assert hypervolume(points, 0.1, reference_ms) == pytest.approx(
            _old_hypervolume(points, 0.1, reference_ms)
        )


def test_non_dominated_and_hypervolume_in_three_and_four_objectives_by_hand() -> None:
    # Minimised vectors. (1,2,2), (2,1,2), (2,2,1) do not dominate each other; (2,2,2) is
    # dominated by each; the repeated (1,2,2) keeps its first.
    vectors = [(1, 2, 2), (2, 1, 2), (2, 2, 2), (2, 2, 1), (1, 2, 2)]
    assert non_dominated(vectors) == [0, 1, 3]
    # Boxes to (3,3,3): 2 + 2 + 2, each pair overlaps in the unit cube at (2,2,2), as do all
    # three: 6 - 3 + 1.
    assert hypervolume_of(vectors, (3, 3, 3)) == pytest.approx(4.0)
    assert hypervolume_of(vectors[:2], (3, 3, 3)) == pytest.approx(3.0)
    assert hypervolume_of([(0, 0, 0, 0)], (1, 2, 3, 4)) == pytest.approx(24.0)
    # 2 + 2 - the unit overlap at (1,1,1,1).
    assert hypervolume_of([(0, 1, 1, 1), (1, 0, 1, 1)], (2, 2, 2, 2)) == pytest.approx(3.0)
    assert hypervolume_of([(0, 1, 1, 5)], (2, 2, 2, 2)) == 0.0  # beyond the reference


def test_a_front_over_accuracy_latency_and_memory_keeps_what_no_point_beats_on_all() -> None:
    points = [
        Scored((0,), 0.5, 10.0, 4.0),
        Scored((1,), 0.5, 20.0, 2.0),  # slower than (0,) but smaller: on the front
        Scored((2,), 0.4, 20.0, 4.0),  # beaten by (0,) on everything
        Scored((3,), 0.9, 30.0, 8.0),
        Scored((4,), 0.9, 30.0, 9.0),  # as (3,) but larger
    ]
    front = pareto_front(points, (Objective.latency, Objective.memory))
    assert [p.architecture for p in front] == [(0,), (1,), (3,)]
    # Over accuracy and memory alone, (0,) is beaten by (1,).
    assert [p.architecture for p in pareto_front(points, (Objective.memory,))] == [(1,), (3,)]
    reference = Reference(0.0, ((Objective.latency, 40.0), (Objective.memory, 10.0)))
    # Boxes of (acc, ms, MB) to (0, 40, 10): 0.5x30x6 + 0.5x20x8 + 0.9x10x2, less the
    # overlaps: (0,)&(1,) 0.5x20x6, (0,)&(3,) and (1,)&(3,) and all three 0.5x10x2.
    expected = 90 + 80 + 18 - 60 - 10 - 10 + 10
    assert front_hypervolume(points, reference) == pytest.approx(expected)
    assert reference.to_dict() == {"accuracy": 0.0, "latency_ms": 40.0, "peak_memory_mb": 10.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latency,memory", "accuracy is always an objective"),
        ("accuracy", "accuracy alone is no trade-off"),
        ("accuracy,latency,power", "unknown objective 'power'"),
        ("accuracy,memory,memory", "memory is listed twice"),
    ],
)
def test_bad_objectives_are_refused_with_the_valid_choices(text: str, expected: str) -> None:
    with pytest.raises(UserInputError, match=expected) as error:
        parse_objectives(text)
    assert "\n" not in str(error.value)


def test_objectives_and_limits_parse() -> None:
    assert parse_objectives("accuracy,latency") == DEFAULT_OBJECTIVES
    assert parse_objectives("memory, accuracy,energy") == (Objective.memory, Objective.energy)
    limits = Limits(max_memory_mb=5.0)
    assert metrics_needed((Objective.latency,), limits) == (Objective.latency, Objective.memory)
    assert limits.excess({Objective.memory: 4.0}) == {Objective.memory: -1.0}
    assert not limits.met_by({Objective.memory: 5.5})
    with pytest.raises(UserInputError, match="--max-energy-mj -1: a limit must be a positive"):
        Limits(max_energy_mj=-1.0)
    low, _ = table_for(TINY).range_ms()
    with pytest.raises(UserInputError, match=f"the fastest takes {low:.3f} ms"):
        Limits(max_latency_ms=low / 2).require_reachable(table_for(TINY))
    Limits(max_latency_ms=low).require_reachable(table_for(TINY))


def test_a_three_objective_study_fronts_exactly_its_non_dominated_feasible_trials(
    supernet_file: Path, tmp_path: Path
) -> None:
    supernet = load(TINY, supernet_file)
    digits = load_digits(RESOLUTION, TINY.input_channels, seed=0)
    table = table_for(TINY)
    source = TableSource(table, TINY)
    # A limit about half of the space meets, so that both kinds of trial occur.
    sample_mb = [peak_memory_mb(TINY, a) for a in TINY.sample(64, seed=5)]
    limit_mb = float(np.median(sample_mb))
    objectives = (Objective.latency, Objective.memory)
    config = ParetoConfig(
        trials=20,
        population=5,
        seed=2,
        study_name="unit-three",
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        objectives=objectives,
        limits=Limits(max_memory_mb=limit_mb),
    )
    result = run_pareto(TINY, 1, table.predictor_version, source, supernet, digits, config)
    assert source.predict_calls == 4  # one request per population
    assert source.metrics_asked == [[DeviceMetric.memory]] * 4  # memory, never energy
    for trial in result.trials:
        assert trial.latency_ms == pytest.approx(table.latency_ms(trial.architecture))
        assert trial.peak_memory_mb == pytest.approx(peak_memory_mb(TINY, trial.architecture))
        assert trial.energy_mj is None
    feasible = [t for t in result.trials if t.peak_memory_mb is not None]
    feasible = [t for t in feasible if t.peak_memory_mb <= limit_mb]
    assert 0 < len(feasible) < len(result.trials)
    assert result.feasible == tuple(feasible)
    # The front, checked against its definition, pair by pair, not through pareto_front.

    def beats(a: TrialRecord, b: TrialRecord) -> bool:
        va = (-a.accuracy, a.latency_ms, a.peak_memory_mb)
        vb = (-b.accuracy, b.latency_ms, b.peak_memory_mb)
        return all(x <= y for x, y in zip(va, vb, strict=True)) and va != vb

    expected = {
        (t.architecture, t.accuracy) for t in feasible if not any(beats(o, t) for o in feasible)
    }
    assert {(t.architecture, t.accuracy) for t in result.front} == expected
    for point in result.front:
        assert point.peak_memory_mb is not None
        assert point.peak_memory_mb <= limit_mb
    # NSGA-II saw the same limit: each trial carries its excess as Optuna's constraint.
    study = optuna.load_study(study_name="unit-three", storage=config.storage)
    for frozen, trial in zip(study.get_trials(), result.trials, strict=True):
        assert trial.peak_memory_mb is not None
        assert frozen.constraints == {"peak_memory_mb": trial.peak_memory_mb - limit_mb}
    row = result.front[0].to_dict()
    assert row["peak_memory_mb"] == result.front[0].peak_memory_mb
    assert "energy_mj" not in row


def test_joining_a_study_with_other_objectives_is_refused(
    supernet_file: Path, tmp_path: Path
) -> None:
    supernet = load(TINY, supernet_file)
    digits = load_digits(RESOLUTION, TINY.input_channels, seed=0)
    source = TableSource(table_for(TINY), TINY)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = ParetoConfig(trials=2, population=2, storage=storage, study_name="objectives")
    run_pareto(TINY, 1, 1, source, supernet, digits, config)
    for objectives in ((Objective.latency, Objective.memory), (Objective.memory,)):
        # Two objectives, the same directions as the study's: only the names tell them apart.
        other = dataclasses.replace(config, objectives=objectives, trials=4)
        wanted = ",".join(["accuracy", *objectives])
        with pytest.raises(StudyMismatch, match=f"objectives accuracy,latency.*{wanted}"):
            run_pareto(TINY, 1, 1, source, supernet, digits, other)
    limited = dataclasses.replace(config, limits=Limits(max_memory_mb=100.0), trials=4)
    with pytest.raises(StudyMismatch, match="constraints"):
        run_pareto(TINY, 1, 1, source, supernet, digits, limited)


def test_pairwise_panels_are_a_png(tmp_path: Path) -> None:
    points = [Scored((n,), 0.1 * n, 10.0 + n, 5.0 - 0.3 * n, 1.0 + 0.1 * n) for n in range(8)]
    metrics = (Objective.latency, Objective.memory, Objective.energy)
    path = tmp_path / "fronts.png"
    plot_fronts(
        path,
        points,
        pareto_front(points, metrics),
        metrics,
        title="t",
        accuracy_label="acc",
        baseline=points[:3],
        limits=Limits(max_memory_mb=4.0),
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000


def test_four_objectives_ask_for_memory_and_energy_and_front_them_all(
    supernet_file: Path,
) -> None:
    supernet = load(TINY, supernet_file)
    source = TableSource(table_for(TINY), TINY)
    objectives = (Objective.latency, Objective.memory, Objective.energy)
    config = ParetoConfig(
        trials=8, population=4, seed=3, study_name="unit-four", objectives=objectives
    )
    report, result = pareto_run(source, 1, TINY, config, supernet, compare_random=6)
    # Two populations and the random sample, each one request for both metrics.
    assert source.metrics_asked == [[DeviceMetric.memory, DeviceMetric.energy]] * 3
    assert report["objectives"] == ["accuracy", "latency", "memory", "energy"]
    assert report["trials_feasible"] == 8  # no limits: every trial
    scored = [t.scored() for t in result.trials]
    distinct = list(dict.fromkeys(scored))  # an architecture asked twice is one point
    assert [t.scored() for t in result.front] == pareto_front(distinct, objectives)
    for row in report["front"]:
        assert row["energy_mj"] == pytest.approx(energy_mj(TINY, row["architecture"]))
    hv = report["hypervolume"]
    assert hv["unit"] == "accuracy x ms x MB x mJ"
    reference = Reference.beyond_worst([scored, list(result.random)], objectives)
    assert reference is not None
    assert hv["reference"] == pytest.approx(reference.to_dict())
    assert hv["value"] == pytest.approx(front_hypervolume(scored, reference))
    assert hv["random"]["value"] == pytest.approx(front_hypervolume(result.random, reference))
    assert len(result.random) == 6


def test_a_study_stored_before_objectives_were_recorded_reads_as_accuracy_and_latency(
    supernet_file: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'old.db'}"
    # What an older process left: two directions and a worker count, no objectives or limits.
    old = optuna.create_study(
        study_name="old", storage=storage, directions=["maximize", "minimize"]
    )
    old.set_user_attr("workers", 1)
    supernet = load(TINY, supernet_file)
    digits = load_digits(RESOLUTION, TINY.input_channels, seed=0)
    source = TableSource(table_for(TINY), TINY)
    config = ParetoConfig(trials=2, population=2, storage=storage, study_name="old")
    memory = dataclasses.replace(config, objectives=(Objective.memory,))
    with pytest.raises(StudyMismatch, match="has objectives accuracy,latency"):
        run_pareto(TINY, 1, 1, source, supernet, digits, memory)
    joined = run_pareto(TINY, 1, 1, source, supernet, digits, config)
    assert joined.worker == 1
    assert optuna.load_study(study_name="old", storage=storage).user_attrs["objectives"] == [
        "accuracy",
        "latency",
    ]
