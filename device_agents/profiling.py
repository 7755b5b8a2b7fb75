"""What every agent does whatever it runs on: measure a list of layers or networks.

A *backend* knows how to run one model on one device (the host's LiteRT, a phone over adb);
this module owns the order of work (interleaved repeats, cool-downs), progress, and the shape
of the results that are uploaded or written to a file.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from device_agents.metrics import DeviceMetric, MetricReadings
from device_agents.quality import Evidence, Gate, Verdict
from device_agents.runners import Timing
from device_agents.statistics import TimingStatistics
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.measurements import LayerMeasurementIn, LayerRole, NetworkMeasurementIn
from models import LayerKey, SearchSpace, format_architecture
from models.errors import UserInputError

AGENT_VERSION = "0.2.0"

Measurement = LayerMeasurementIn | NetworkMeasurementIn


@dataclass(frozen=True, slots=True)
class Conditions:
    temp_before_c: float | None = None
    temp_after_c: float | None = None
    frequencies_khz: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Measured:
    """One model timed once: its statistics, the raw samples if kept, the conditions."""

    statistics: TimingStatistics
    samples_ms: tuple[float, ...] | None = None
    conditions: Conditions = field(default_factory=Conditions)
    export_s: float = 0.0
    measure_s: float = 0.0
    evidence: Evidence = field(default_factory=Evidence)


class Backend(Protocol):
    """Runs models on one device."""

    @property
    def tool_version(self) -> str: ...

    def describe(self) -> DeviceIn:
        """The device as the service registers it (hardware, runtime, settings)."""
        ...

    def measure_layer(self, key: LayerKey, timing: Timing) -> Measured: ...

    def measure_network(
        self, space: SearchSpace, arch: Sequence[int], timing: Timing
    ) -> Measured: ...

    def measure_metrics(
        self, model: LayerKey | Sequence[LayerKey], metrics: frozenset[DeviceMetric], timing: Timing
    ) -> MetricReadings:
        """The metric pass of one layer (a key) or network (its keys, stem to classifier)."""
        ...

    def check_metrics(self, metrics: frozenset[DeviceMetric]) -> None:
        """Refuse (MeasurementError), before any timed run, metrics the device cannot measure
        now, such as energy on a phone that is charging; the job is then retried later rather
        than refused after all its timed passes."""
        ...


Target = LayerKey | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """One measurement of a layer (``space`` None) or of an architecture of ``space``, with
    the gate's verdict on it; rejected ones are kept (and stored) as evidence."""

    target: Target
    space: SearchSpace | None
    measured: Measured
    tool_version: str
    verdict: Verdict = field(default_factory=Verdict.ok)
    attempt: int = 1
    pass_index: int = 0
    readings: MetricReadings | None = None  # the model's metric pass, on one of its results

    @property
    def kind(self) -> str:
        """``layers`` or ``networks``: the service's collection it belongs in."""
        return "layers" if isinstance(self.target, LayerKey) else "networks"

    def measurement(self, keep_samples: bool = False) -> Measurement:
        """The wire form the service stores."""
        if isinstance(self.target, LayerKey):
            return self.layer_measurement(keep_samples)
        return self.network_measurement(keep_samples)

    def layer_measurement(
        self, keep_samples: bool = False, role: LayerRole = "layer"
    ) -> LayerMeasurementIn:
        if not isinstance(self.target, LayerKey):
            raise TypeError(f"{self._label()} is a network, not a layer")
        return LayerMeasurementIn(
            layer_key=str(self.target), role=role, **self._statistics(keep_samples)
        )

    def network_measurement(self, keep_samples: bool = False) -> NetworkMeasurementIn:
        if isinstance(self.target, LayerKey) or self.space is None:
            raise TypeError(f"{self._label()} is not a network of a search space")
        return NetworkMeasurementIn(
            space=self.space.name, architecture=list(self.target), **self._statistics(keep_samples)
        )

    def _label(self) -> str:
        return _label(self.target)

    def _statistics(self, keep_samples: bool) -> dict[str, Any]:
        body: dict[str, Any] = self.measured.statistics.as_measurement()
        conditions = self.measured.conditions
        body.update(
            temp_before_c=conditions.temp_before_c,
            temp_after_c=conditions.temp_after_c,
            frequencies_khz=conditions.frequencies_khz,
            agent_version=AGENT_VERSION,
            tool_version=self.tool_version[:64],
        )
        if keep_samples and self.measured.samples_ms:
            body["samples_ms"] = list(self.measured.samples_ms)
        body.update(
            accepted=self.verdict.accepted,
            rejection=self.verdict.reason,
            quality=self.measured.evidence.as_dict() or None,
            attempt=self.attempt,
            pass_index=self.pass_index,
        )
        if self.readings is not None:
            body.update(self.readings.as_measurement())
        return body

    def rejected(self, reason: str) -> Result:
        return replace(self, verdict=Verdict(False, reason))


# A burst lasts a second or two: a model rejected for one is measured again no sooner.
RETRY_GAP_S = 2.0


def profile(
    backend: Backend,
    *,
    layers: Sequence[LayerKey] = (),
    space: SearchSpace | None = None,
    architectures: Sequence[Sequence[int]] = (),
    timing: Timing,
    gate: Gate | None = None,
    show_progress: bool = True,
    on_result: Callable[[Result], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    metrics: Sequence[DeviceMetric] = (),
) -> list[Result]:
    """Measure every layer and architecture ``timing.repeats`` times, interleaved.

    Each pass visits the whole list before the next starts, so slow drifts (heat, background
    load) spread over all targets instead of biasing the ones measured last. With a ``gate``, a
    measurement that shows interference is kept as rejected and measured again at the end of
    its pass (at least RETRY_GAP_S later); after the passes, every repeat far above its model's
    other repeats is rejected and measured again, and a model with no accepted window at all is
    measured a few more times; all within the gate's bounds.

    ``metrics`` (memory, energy) are measured last, once per model in a pass of their own
    (their probes would disturb a timed window), and carried by the model's first accepted
    result, so that one stored row per model holds them. ``on_result`` has seen every result
    by then: a caller that streams results gets the metrics from the returned list.
    """
    if len(architectures) and space is None:
        raise ValueError("architectures need the search space they index")
    work: list[Target] = [*layers]
    work += [tuple(int(i) for i in arch) for arch in architectures]
    if metrics:
        backend.check_metrics(frozenset(metrics))
    with _progress(show_progress) as bar:
        session = _Session(backend, space, timing, gate, on_result, sleep, clock, bar, len(work))
        for pass_index in range(timing.repeats):
            queue = deque(work)
            while queue:
                target = queue.popleft()
                accepted = session.measure(target, pass_index).verdict.accepted
                if not accepted and session.may_retry(target):
                    queue.append(target)
                if timing.cooldown_secs > 0:
                    sleep(timing.cooldown_secs)
        if gate is not None:
            session.settle_disagreements(work, gate)
            session.rescue_unmeasured(work, gate)
        if metrics:
            session.measure_metrics(work, frozenset(metrics))
    return session.results


def remeasured(results: Sequence[Result]) -> int:
    """Measurements taken again because the gate rejected an attempt."""
    return sum(1 for r in results if r.attempt > 1)


class _Session:
    """One profile() call: the results so far, the attempts per model, the retry budget."""

    def __init__(
        self,
        backend: Backend,
        space: SearchSpace | None,
        timing: Timing,
        gate: Gate | None,
        on_result: Callable[[Result], None] | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        bar: Progress,
        n_targets: int,
    ) -> None:
        self.backend, self.space, self.timing, self.gate = backend, space, timing, gate
        self.on_result, self.sleep, self.clock, self.bar = on_result, sleep, clock, bar
        self.task: TaskID = bar.add_task("profiling", total=n_targets * timing.repeats)
        self.results: list[Result] = []
        self.attempts: Counter[tuple[Target, int]] = Counter()
        self.rejected_at: dict[Target, float] = {}
        self.retries = 0
        self.budget = 0 if gate is None else int(gate.max_retry_share * n_targets * timing.repeats)

    def measure(self, target: Target, pass_index: int) -> Result:
        waited = self.clock() - self.rejected_at.get(target, -RETRY_GAP_S)
        if waited < RETRY_GAP_S:
            self.sleep(RETRY_GAP_S - waited)
        self.bar.update(self.task, description=_label(target))
        self.attempts[(target, pass_index)] += 1
        measured = _measure_one(self.backend, target, self.space, self.timing)
        verdict = self.gate.judge(measured.evidence) if self.gate else Verdict.ok()
        result = Result(
            target,
            self.space if not isinstance(target, LayerKey) else None,
            measured,
            self.backend.tool_version,
            verdict,
            attempt=self.attempts[(target, pass_index)],
            pass_index=pass_index,
        )
        if not verdict.accepted:
            self.rejected_at[target] = self.clock()
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        self.bar.advance(self.task)
        return result

    def measure_metrics(self, work: list[Target], metrics: frozenset[DeviceMetric]) -> None:
        """The metric pass: each model once, its readings on its first accepted result."""
        names = ", ".join(sorted(metrics))
        self.bar.update(self.task, total=(self.bar.tasks[self.task].total or 0) + len(work))
        for target in work:
            self.bar.update(self.task, description=f"{names} {_label(target)}"[:40])
            model = target if isinstance(target, LayerKey) else self._network(target)
            readings = self.backend.measure_metrics(model, metrics, self.timing)
            positions = [i for i, r in enumerate(self.results) if r.target == target]
            carrier = next(
                (i for i in positions if self.results[i].verdict.accepted), positions[-1]
            )
            self.results[carrier] = replace(self.results[carrier], readings=readings)
            self.bar.advance(self.task)

    def _network(self, arch: tuple[int, ...]) -> tuple[LayerKey, ...]:
        if self.space is None:
            raise ValueError("architectures need the search space they index")
        return self.space.network(arch)

    def may_retry(self, target: Target) -> bool:
        """Whether the bounds allow measuring ``target`` once more; counts it if so."""
        if self.gate is None or self.retries >= self.budget:
            return False
        taken_again = sum(1 for r in self._of(target) if r.attempt > 1)
        if taken_again >= self.gate.max_retries_per_target:
            return False
        self._spend_retry()
        return True

    def _spend_retry(self) -> None:
        """One more measurement than planned: counted against the budget and on the bar."""
        self.retries += 1
        self.bar.update(self.task, total=(self.bar.tasks[self.task].total or 0) + 1)

    def rescue_unmeasured(self, work: list[Target], gate: Gate) -> None:
        """Measure again, up to ``gate.rescue_attempts`` times each, the models whose every
        window was rejected, while the job's share of re-measurements lasts."""
        for _ in range(gate.rescue_attempts):
            empty = [t for t in work if not any(r.verdict.accepted for r in self._of(t))]
            if not empty:
                return
            for target in empty:
                if self.retries >= self.budget:
                    return
                self._spend_retry()
                self.measure(target, pass_index=max(r.pass_index for r in self._of(target)))

    def _of(self, target: Target) -> list[Result]:
        return [r for r in self.results if r.target == target]

    def settle_disagreements(self, work: list[Target], gate: Gate) -> None:
        """Reject repeats far above their model's other repeats and measure those passes again,
        until the repeats agree or the bounds are spent."""
        while True:
            again = [
                (target, pass_index)
                for target in work
                for pass_index in self._reject_outliers(target, gate)
                if self.may_retry(target)
            ]
            if not again:
                return
            for target, pass_index in again:
                self.measure(target, pass_index)

    def _reject_outliers(self, target: Target, gate: Gate) -> list[int]:
        """Reject the target's disagreeing repeats; the passes they belonged to."""
        positions = [
            i for i, r in enumerate(self.results) if r.target == target and r.verdict.accepted
        ]
        medians = [self.results[i].measured.statistics.median_ms for i in positions]
        passes = []
        for i in gate.outliers(medians):
            result = self.results[positions[i]]
            self.results[positions[i]] = result.rejected(
                f"median {medians[i]:.4g} ms is more than {gate.repeat_limit:g}x the median of "
                "its other repeats: a disturbed pass"
            )
            passes.append(result.pass_index)
        return passes


def _measure_one(
    backend: Backend, target: Target, space: SearchSpace | None, timing: Timing
) -> Measured:
    if isinstance(target, LayerKey):
        return backend.measure_layer(target, timing)
    if space is None:
        raise ValueError("architectures need the search space they index")
    return backend.measure_network(space, target, timing)


def _label(target: LayerKey | tuple[int, ...]) -> str:
    text = str(target) if isinstance(target, LayerKey) else "net " + format_architecture(target)
    return text if len(text) <= 40 else text[:37] + "..."


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def write_results(results: Sequence[Result], path: Path, keep_samples: bool = False) -> None:
    """Direct mode: results to a JSON or CSV file, by the file's suffix."""
    rows = [
        {"kind": r.kind, **r.measurement(keep_samples).model_dump(mode="json", exclude_none=True)}
        for r in results
    ]
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=1) + "\n")
        return
    if path.suffix != ".csv":
        raise UserInputError(f"cannot write {path}: use a .json or .csv file name")
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
            )
