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

from device_agents.runners import RunSettings
from device_agents.statistics import TimingStatistics
from models import LayerKey, SearchSpace

AGENT_VERSION = "0.1.0"


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

    def describe(self) -> dict[str, Any]:
        """The device as the service registers it (hardware, runtime, settings)."""
        ...

    def measure_layer(self, key: LayerKey, settings: RunSettings) -> Measured: ...

    def measure_network(
        self, space: SearchSpace, arch: Sequence[int], settings: RunSettings
    ) -> Measured: ...


@dataclass(frozen=True, slots=True)
class Result:
    """A measurement ready for the service: ``target`` names the layer or the network."""

    kind: str  # "layers" or "networks"
    target: dict[str, Any]
    measured: Measured
    tool_version: str

    def as_upload(self, keep_samples: bool = False) -> dict[str, Any]:
        stats = self.measured.statistics
        body: dict[str, Any] = {**self.target, **stats.as_measurement()}
        if body.get("p90_ms") is None:
            body.pop("p90_ms", None)
        conditions = self.measured.conditions
        for name in ("temp_before_c", "temp_after_c", "frequencies_khz"):
            value = getattr(conditions, name)
            if value is not None:
                body[name] = value
        if keep_samples and self.measured.samples_ms:
            body["samples_ms"] = list(self.measured.samples_ms)
        body["agent_version"] = AGENT_VERSION
        body["tool_version"] = self.tool_version[:64]
        return body


def profile(
    backend: Backend,
    *,
    layers: Sequence[LayerKey] = (),
    space: SearchSpace | None = None,
    architectures: Sequence[Sequence[int]] = (),
    settings: RunSettings,
    repeats: int = 1,
    cooldown_s: float = 0.0,
    show_progress: bool = True,
    on_result: Callable[[Result], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Result]:
    """Measure every layer and architecture ``repeats`` times, interleaved.

    Each pass visits the whole list before the next starts, so slow drifts (heat, background
    load) spread over all targets instead of biasing the ones measured last.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats}; need at least 1")
    if architectures and space is None:
        raise ValueError("architectures need the search space they index")
    work: list[LayerKey | tuple[int, ...]] = [*layers]
    work += [tuple(int(i) for i in arch) for arch in architectures]
    results: list[Result] = []
    with _progress(show_progress) as bar:
        task = bar.add_task("profiling", total=len(work) * repeats)
        for _ in range(repeats):
            for target in work:
                bar.update(task, description=_label(target))
                result = _measure_one(backend, target, space, settings)
                results.append(result)
                if on_result is not None:
                    on_result(result)
                bar.advance(task)
                if cooldown_s > 0:
                    sleep(cooldown_s)
    return results


def _measure_one(
    backend: Backend,
    target: LayerKey | tuple[int, ...],
    space: SearchSpace | None,
    settings: RunSettings,
) -> Result:
    if isinstance(target, LayerKey):
        measured = backend.measure_layer(target, settings)
        return Result("layers", {"layer_key": str(target)}, measured, backend.tool_version)
    if space is None:
        raise ValueError("architectures need the search space they index")
    measured = backend.measure_network(space, target, settings)
    body = {"space": space.name, "architecture": list(target)}
    return Result("networks", body, measured, backend.tool_version)


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
    rows = [{"kind": r.kind, **r.as_upload(keep_samples)} for r in results]
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
