"""Pareto search on a fixed table: batched predictions, an exact trial budget, a true front."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from models import get_space
from nas.digits import load_digits
from nas.front import Scored, hypervolume, pareto_front
from nas.one_shot import OneShotConfig, load, save, train_one_shot
from nas.pareto import ParetoConfig, StudyMismatch, run_pareto
from nas.plot import plot_front
from nas.runs import Measuring, pareto_run
from tests.nas_tables import TableSource, table_for

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
    """Stands in for an agent: 'measures' each network at 1.05 x its table latency."""

    def __init__(self, source: TableSource) -> None:
        self.source = source
        self.batches: list[list[list[int]]] = []

    def measure(
        self,
        device_id: int,
        space: str,
        architectures: Sequence[Sequence[int]],
        *,
        timeout_s: float,
        settings: Mapping[str, Any] | None = None,
        run_agent: Callable[[], None] | None = None,
    ) -> list[float]:
        self.batches.append([list(a) for a in architectures])
        return [1.05 * self.source.table.latency_ms(a) for a in architectures]


def test_measure_puts_the_measured_front_beside_the_predicted(supernet_file: Path) -> None:
    source = TableSource(table_for(TINY))
    measurer = FixedFactorMeasurer(source)
    config = ParetoConfig(trials=8, population=4, study_name="unit-measure")
    report, result = pareto_run(
        source, 1, TINY, config, load(TINY, supernet_file), measuring=Measuring(measurer)
    )
    assert measurer.batches == [[list(r.architecture) for r in result.front]]  # one job
    assert report["latency"] == "front measured on the device"
    for row in report["front"]:
        assert row["measured_ms"] == pytest.approx(1.05 * row["latency_ms"])
        assert row["prediction_error_pct"] == pytest.approx(100 * (1 / 1.05 - 1))
    unmeasured, _ = pareto_run(
        source,
        1,
        TINY,
        dataclasses.replace(config, study_name="unit-predicted"),
        load(TINY, supernet_file),
    )
    assert unmeasured["latency"].startswith("predicted only")
    assert all(row["measured_ms"] is None for row in unmeasured["front"])
