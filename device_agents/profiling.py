"""What every agent does whatever it runs on: measure a list of layers or networks.

A *backend* knows how to run one model on one device (the host's LiteRT, a phone over adb);
this module owns the order of work (interleaved repeats, cool-downs), progress, and the shape
of the results that are uploaded or written to a file.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from device_agents.runners import Timing
from device_agents.statistics import TimingStatistics
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.measurements import LayerMeasurementIn, NetworkMeasurementIn
from models import LayerKey, SearchSpace

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


@dataclass(frozen=True, slots=True)
class Result:
    """One measurement of a layer (``space`` None) or of an architecture of ``space``."""

    target: LayerKey | tuple[int, ...]
    space: SearchSpace | None
    measured: Measured
    tool_version: str

    @property
    def kind(self) -> str:
        """``layers`` or ``networks``: the service's collection it belongs in."""
        return "layers" if isinstance(self.target, LayerKey) else "networks"

    def measurement(self, keep_samples: bool = False) -> Measurement:
        """The wire form the service stores."""
        if isinstance(self.target, LayerKey):
            return self.layer_measurement(keep_samples)
        return self.network_measurement(keep_samples)

    def layer_measurement(self, keep_samples: bool = False) -> LayerMeasurementIn:
        if not isinstance(self.target, LayerKey):
            raise TypeError(f"{self._label()} is a network, not a layer")
        return LayerMeasurementIn(layer_key=str(self.target), **self._statistics(keep_samples))

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
        return body


def profile(
    backend: Backend,
    *,
    layers: Sequence[LayerKey] = (),
    space: SearchSpace | None = None,
    architectures: Sequence[Sequence[int]] = (),
    timing: Timing,
    show_progress: bool = True,
    on_result: Callable[[Result], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Result]:
    """Measure every layer and architecture ``timing.repeats`` times, interleaved.

    Each pass visits the whole list before the next starts, so slow drifts (heat, background
    load) spread over all targets instead of biasing the ones measured last.
    """
    if len(architectures) and space is None:
        raise ValueError("architectures need the search space they index")
    work: list[LayerKey | tuple[int, ...]] = [*layers]
    work += [tuple(int(i) for i in arch) for arch in architectures]
    results: list[Result] = []
    with _progress(show_progress) as bar:
        task = bar.add_task("profiling", total=len(work) * timing.repeats)
        for _ in range(timing.repeats):
            for target in work:
                bar.update(task, description=_label(target))
                result = _measure_one(backend, target, space, timing)
                results.append(result)
                if on_result is not None:
                    on_result(result)
                bar.advance(task)
                if timing.cooldown_secs > 0:
                    sleep(timing.cooldown_secs)
    return results


def _measure_one(
    backend: Backend,
    target: LayerKey | tuple[int, ...],
    space: SearchSpace | None,
    timing: Timing,
) -> Result:
    if isinstance(target, LayerKey):
        return Result(target, None, backend.measure_layer(target, timing), backend.tool_version)
    if space is None:
        raise ValueError("architectures need the search space they index")
    measured = backend.measure_network(space, target, timing)
    return Result(target, space, measured, backend.tool_version)


def _label(target: LayerKey | tuple[int, ...]) -> str:
    text = str(target) if isinstance(target, LayerKey) else "net " + ",".join(map(str, target))
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
        raise ValueError(f"cannot write {path}: use a .json or .csv file name")
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
