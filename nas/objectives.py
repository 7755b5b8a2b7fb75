"""What a Pareto search trades against accuracy: the device metrics, their units, the limits.

Accuracy is always maximised; every device metric the search uses is minimised. A metric is
either an objective (it spans the front) or only limited (``--max-memory-mb`` with objectives
accuracy and latency), or both; the service is asked for exactly the metrics either needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.predictors import RuntimeTable
from models.errors import UserInputError

ACCURACY = "accuracy"


class Objective(StrEnum):
    """A minimised objective: latency (every prediction has it), peak memory, energy."""

    latency = "latency"
    memory = "memory"
    energy = "energy"

    @property
    def field(self) -> str:
        """Its name, with its unit, in records and reports (the service's own field names)."""
        return _FIELDS[self]

    @property
    def unit(self) -> str:
        return _UNITS[self]

    @property
    def option(self) -> str:
        """The command-line option that limits it."""
        return f"--max-{self.value}-{self.unit.lower()}"

    @property
    def device_metric(self) -> DeviceMetric | None:
        """What to ask the service for beside latency (None: latency comes with every answer)."""
        return None if self is Objective.latency else DeviceMetric(self.value)


_FIELDS = {
    Objective.latency: "latency_ms",
    Objective.memory: "peak_memory_mb",
    Objective.energy: "energy_mj",
}
_UNITS = {Objective.latency: "ms", Objective.memory: "MB", Objective.energy: "mJ"}
# How a report spells each unit out, so MB is never read as 10^6 bytes.
UNIT_NOTES = {
    "accuracy": "fraction of the proxy task's validation set",
    "latency_ms": "milliseconds per inference",
    "peak_memory_mb": "MB = 2^20 bytes, peak resident memory of one inference",
    "energy_mj": "millijoules per inference",
}
DEFAULT_OBJECTIVES: tuple[Objective, ...] = (Objective.latency,)


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """``accuracy,latency,memory`` -> the minimised metrics, in the order given.

    Raises ``UserInputError`` naming what was wrong and the valid choices."""
    names = [n.strip() for n in text.split(",")]
    valid = f"{ACCURACY} and one or more of {', '.join(m.value for m in Objective)}"
    example = "e.g. --objectives accuracy,latency,memory"
    unknown = [n for n in names if n != ACCURACY and n not in Objective.__members__]
    if unknown:
        raise UserInputError(
            f"--objectives {text!r}: unknown objective {unknown[0]!r}; choose {valid}, {example}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(
            f"--objectives {text!r}: {repeated[0]} is listed twice; list each objective once"
        )
    if ACCURACY not in names:
        raise UserInputError(
            f"--objectives {text!r}: accuracy is always an objective (maximised) and must be "
            f"listed; choose {valid}, {example}"
        )
    metrics = tuple(Objective(n) for n in names if n != ACCURACY)
    if not metrics:
        raise UserInputError(
            f"--objectives {text!r}: accuracy alone is no trade-off; add one or more of "
            f"{', '.join(m.value for m in Objective)}, {example}"
        )
    return metrics


def objective_names(metrics: Sequence[Objective]) -> list[str]:
    """The study's objectives, accuracy first, as stored with it and shown in reports."""
    return [ACCURACY, *(m.value for m in metrics)]


@dataclass(frozen=True)
class Limits:
    """Upper limits on device metrics (None: unlimited); a trial meets them or is infeasible."""

    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_energy_mj: float | None = None

    def __post_init__(self) -> None:
        for metric, limit in self.items():
            if not (math.isfinite(limit) and limit > 0):
                raise UserInputError(
                    f"{metric.option} {limit:g}: a limit must be a positive number of {metric.unit}"
                )

    def of(self, metric: Objective) -> float | None:
        return {
            Objective.latency: self.max_latency_ms,
            Objective.memory: self.max_memory_mb,
            Objective.energy: self.max_energy_mj,
        }[metric]

    def items(self) -> list[tuple[Objective, float]]:
        """The limits set, in the metrics' order."""
        return [(m, limit) for m in Objective if (limit := self.of(m)) is not None]

    def excess(self, values: Mapping[Objective, float | None]) -> dict[Objective, float]:
        """Optuna's constraint values, one per limit: value minus limit, <= 0 when met.

        A metric with a limit but no value is a bug of the caller (it was not predicted)."""
        out = {}
        for metric, limit in self.items():
            value = values.get(metric)
            if value is None:
                raise ValueError(f"{metric.field} was not predicted, but {metric.option} needs it")
            out[metric] = value - limit
        return out

    def met_by(self, values: Mapping[Objective, float | None]) -> bool:
        return all(v <= 0 for v in self.excess(values).values())

    def require_reachable(self, table: RuntimeTable) -> None:
        """Refuse a latency limit below the fastest the space can be: no trial could meet it.

        (Memory and energy have no such bound at hand; a study that meets none of their
        limits reports zero feasible trials.)"""
        if self.max_latency_ms is None:
            return
        low, _ = table.range_ms()
        if self.max_latency_ms < low:
            raise UserInputError(
                f"--max-latency-ms {self.max_latency_ms:g}: no architecture of {table.space} is "
                f"that fast on this device, the fastest takes {low:.3f} ms (every layer "
                "fastest); raise the limit"
            )

    def to_dict(self) -> dict[str, float]:
        """The limits set, keyed like the records' fields with a ``max_`` prefix."""
        return {f"max_{m.field}": limit for m, limit in self.items()}


def metrics_needed(objectives: Sequence[Objective], limits: Limits) -> tuple[Objective, ...]:
    """Every metric the objectives or the limits use, in the metrics' order."""
    used = set(objectives) | {m for m, _ in limits.items()}
    return tuple(m for m in Objective if m in used)


def device_metrics(metrics: Sequence[Objective]) -> list[DeviceMetric]:
    """What to ask the service for beside latency."""
    return [d for m in metrics if (d := m.device_metric) is not None]
