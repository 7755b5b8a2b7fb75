"""Metrics beside latency: what a backend's metric pass returns, and the energy arithmetic.

A job may ask for peak memory and energy per inference (``latency_api.schemas.enums.DeviceMetric``).
They are measured in a pass of their own after the timed passes, never inside a timed window:
polling a process's memory or a power rail takes CPU time from the model being timed.

The energy of one inference is the energy drawn over a window of back-to-back inferences, less
the idle power over an equal window, divided by the inferences::

    energy_mj = (E_window - P_idle * t_window) / inferences * 1000

Backends differ in where the energy comes from (a phone's power-monitor rails or its fuel
gauge, a host's RAPL counter); the arithmetic and its refusals live here, once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from device_agents.errors import MeasurementError
from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.measurements import METHOD_CHARS

__all__ = ["DeviceMetric", "EnergyWindow", "MetricReadings", "energy_per_inference_mj"]


@dataclass(frozen=True, slots=True)
class MetricReadings:
    """One model's metric pass; a metric that was not asked for stays None.

    A metric that was asked for but cannot be measured on this device has its value None and
    its method saying why (a host with no RAPL counter, say): the job still stores its latency.
    """

    peak_memory_bytes: int | None = None
    memory_method: str | None = None
    energy_mj: float | None = None
    energy_method: str | None = None
    energy_detail: dict[str, Any] | None = None

    def as_measurement(self) -> dict[str, Any]:
        """The wire fields (``latency_api.schemas.measurements.Statistics``) that are set, the
        methods cut to the store's length (a reason can run long)."""
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        for name in ("memory_method", "energy_method"):
            if name in fields:
                fields[name] = fields[name][:METHOD_CHARS]
        return fields


@dataclass(frozen=True, slots=True)
class EnergyWindow:
    """The counter's readings around a window of inferences and around an idle window."""

    active_j: float  # energy drawn while the model ran, joules
    active_s: float  # how long it ran, seconds (monotonic clock)
    inferences: int
    idle_j: float  # energy drawn over the idle window, joules
    idle_s: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def idle_w(self) -> float:
        return self.idle_j / self.idle_s

    @property
    def active_w(self) -> float:
        return self.active_j / self.active_s

    def energy_per_inference_mj(self) -> float:
        return energy_per_inference_mj(
            self.active_j, self.active_s, self.inferences, self.idle_j, self.idle_s
        )

    def evidence(self) -> dict[str, Any]:
        """What is stored beside the figure, so that a reader can check it."""
        return {
            "active_w": round(self.active_w, 6),
            "idle_w": round(self.idle_w, 6),
            "active_s": round(self.active_s, 4),
            "idle_s": round(self.idle_s, 4),
            "inferences": self.inferences,
            **self.detail,
        }


def energy_per_inference_mj(
    active_j: float, active_s: float, inferences: int, idle_j: float, idle_s: float
) -> float:
    """Energy per inference above idle, millijoules (see the module doc).

    A window that drew less than idle would be a negative energy: the idle reading was
    disturbed, or the window was too short for the counter's resolution. That is refused with
    the figures, not clipped to zero, so the job is retried rather than storing a wrong zero.
    """
    if inferences < 1:
        raise MeasurementError(f"{inferences} inferences in the energy window: need at least one")
    if active_s <= 0 or idle_s <= 0:
        raise MeasurementError(
            f"energy windows of {active_s:.3f} s (active) and {idle_s:.3f} s (idle): both must "
            "last longer than zero"
        )
    above_idle_j = active_j - idle_j / idle_s * active_s
    if above_idle_j <= 0:
        raise MeasurementError(
            f"the model's window drew {active_j / active_s:.3f} W, no more than idle "
            f"({idle_j / idle_s:.3f} W): the idle window was disturbed or the counter too "
            "coarse for the window; lengthen the window (more runs) and measure again"
        )
    return above_idle_j / inferences * 1e3
