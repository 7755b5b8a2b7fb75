"""A phone's energy counters: its power-monitor rails, or else its fuel gauge, read over adb.

Two sources, best first (sources of both formats in ``tests/data/README.md``):

- **Rails**: Pixel 6 and later have an on-device power monitor (ODPM) whose accumulators the
  kernel exposes as ``/sys/bus/iio/devices/iio:deviceN/energy_value``: a ``t=<ms since boot>``
  line, then ``CH<i>(T=<ms>)[<RAIL>], <µWs>`` per rail. The counters keep counting between
  reads and carry the phone's own timestamps, so reading them in separate adb calls around a
  run is exact: adb's own latency falls in both the model's window and the idle window and
  cancels. The files are root's: hwlat reads them through ``su -c`` unless adbd runs as root.
- **Fuel gauge**: ``/sys/class/power_supply/battery/current_now`` and ``voltage_now``, the
  battery's instantaneous current and voltage. They must be sampled while the model runs, many
  times a second; one adb call takes tens of milliseconds, so the sampler runs on the phone:
  ``BENCHMARK & while kill -0 $!; do grep -H . /proc/uptime CURRENT VOLTAGE; sleep P; done``,
  each sample stamped with the phone's uptime. The kernel ABI says negative current is
  discharge; some vendors' drivers report discharge as positive, so the sign is read off the
  idle window (a phone off its charger can only discharge). The ABI's units are µA and µV;
  drivers reporting mV (and mA with it) are recognised by the voltage's magnitude, and said so.

Either way the window's energy less the idle power over an equal window, divided by the
inferences, is :func:`device_agents.metrics.energy_per_inference_mj` (via
:class:`~device_agents.metrics.EnergyWindow`). Both count everything the phone draws, so the
phone must be quiet (screen off, nothing else running) and not on a charger: a battery being
charged makes the gauge's current meaningless, and the agent refuses unless told otherwise.
"""

from __future__ import annotations

import re
import shlex
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from device_agents.adb import ShellResult
from device_agents.errors import MeasurementError

ENERGY_GLOB: Final = "/sys/bus/iio/devices/iio:device*/energy_value"
SUPPLY: Final = "/sys/class/power_supply"
UPTIME: Final = "/proc/uptime"
CURRENT: Final = f"{SUPPLY}/battery/current_now"
VOLTAGE: Final = f"{SUPPLY}/battery/voltage_now"
# What says a phone is on a charger: the battery's status, and any supply that is online.
CHARGER_FILES: Final = (
    f"{SUPPLY}/battery/status",
    f"{SUPPLY}/usb/online",
    f"{SUPPLY}/ac/online",
    f"{SUPPLY}/wireless/online",
)
# Below this the gauge's samples miss the shape of a window of a second or two.
MIN_GAUGE_HZ: Final = 10.0

RAILS_METHOD: Final = (
    "ODPM rails (iio energy_value), all rails summed, window above an equal idle window"
)
GAUGE_METHOD: Final = (
    "fuel gauge current_now x voltage_now sampled on the phone, window above an equal idle window"
)
CHARGING_HELP: Final = (
    "energy cannot be measured while the phone charges (the battery's current is then the "
    "charger's, not the model's): run adb over Wi-Fi (`adb tcpip 5555`), or stop charging "
    "(the phone's charging-control setting, or a USB data-only adapter), or pass "
    "--allow-charging to measure anyway and record charging: true"
)

_T_RE: Final = re.compile(r"^t=(\d+)$")
_CHANNEL_RE: Final = re.compile(r"^CH(\d+)\(T=(\d+)\)\[([^\]]+)\], (\d+)$")
_GREP_RE: Final = re.compile(r"^(/[^:]+):(.*)$")

Shell = Callable[[str], ShellResult]


class NoRails(RuntimeError):
    """The phone's rails cannot be read; the message says why (no monitor, no root)."""


@dataclass(frozen=True, slots=True)
class RailsReading:
    """One read of every ``energy_value``: each chip's timestamp, each rail's energy."""

    stamps_ms: tuple[int, ...]
    energy_uws: Mapping[str, int]


def parse_energy_value(text: str) -> RailsReading:
    """``cat .../iio:device*/energy_value``: one block per chip, each a ``t=`` line and rails."""
    stamps: list[int] = []
    energy: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if match := _T_RE.match(line):
            stamps.append(int(match[1]))
        elif (match := _CHANNEL_RE.match(line)) and stamps:
            rail = match[3]
            if rail in energy:
                raise MeasurementError(f"energy_value line {number}: rail {rail} appears twice")
            energy[rail] = int(match[4])
        else:
            raise MeasurementError(
                f"energy_value line {number} is not 't=<ms>' or 'CH<i>(T=<ms>)[<rail>], <uWs>' "
                f"(after a t= line): {line!r}"
            )
    if not stamps or not energy:
        raise MeasurementError(f"energy_value holds no timestamp and rails: {text.strip()!r}")
    return RailsReading(tuple(stamps), energy)


def rails_delta(before: RailsReading, after: RailsReading) -> tuple[float, float]:
    """Joules drawn by all rails between two readings, and the seconds between them."""
    if set(before.energy_uws) != set(after.energy_uws) or len(before.stamps_ms) != len(
        after.stamps_ms
    ):
        raise MeasurementError("the rails changed between two readings (a chip reset?)")
    drawn = [after.energy_uws[r] - before.energy_uws[r] for r in before.energy_uws]
    spans = [b - a for a, b in zip(before.stamps_ms, after.stamps_ms, strict=True)]
    if min(drawn) < 0 or min(spans) <= 0:
        raise MeasurementError(
            "the rails' counters went backwards or did not advance between two readings (the "
            "phone rebooted?)"
        )
    return sum(drawn) / 1e6, statistics.fmean(spans) / 1e3


class RailsAccess:
    """How this phone's rails are read: directly (adbd as root) or through ``su -c``."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell
        self.via_su = False
        self.rails: tuple[str, ...] = ()

    def probe(self) -> None:
        """Find a way to read the rails, or raise :class:`NoRails` saying why there is none."""
        plain = self._shell(f"cat {ENERGY_GLOB}")
        if plain.returncode == 0:
            self.rails = tuple(parse_energy_value(plain.stdout).energy_uws)
            return
        if "No such file" in plain.stderr:
            raise NoRails(f"no on-device power monitor ({ENERGY_GLOB} does not exist)")
        su = self._shell(f"su -c {shlex.quote('cat ' + ENERGY_GLOB)}")
        if su.returncode != 0:
            raise NoRails(
                f"the rails are root's and su failed ({_last_line(su)}); root the phone or run "
                "`adb root` on a userdebug build"
            )
        self.via_su = True
        self.rails = tuple(parse_energy_value(su.stdout).energy_uws)

    def read(self) -> RailsReading:
        command = f"cat {ENERGY_GLOB}"
        result = self._shell(f"su -c {shlex.quote(command)}" if self.via_su else command)
        if result.returncode != 0:
            raise MeasurementError(f"reading the rails failed: {_last_line(result)}")
        return parse_energy_value(result.stdout)


def charging_reasons(values: Mapping[str, str]) -> list[str]:
    """Why the phone counts as charging (``grep -Hs`` values of CHARGER_FILES); [] if not."""
    reasons = []
    status = values.get(CHARGER_FILES[0])
    if status in ("Charging", "Full"):
        reasons.append(f"battery status {status}")
    for path in CHARGER_FILES[1:]:
        if values.get(path) == "1":
            reasons.append(f"{path.split('/')[-2]} supply online")
    return reasons


def sampler_command(program: str, period_s: float) -> str:
    """``program`` in the background, the gauge sampled on the phone while it lives."""
    files = " ".join((UPTIME, CURRENT, VOLTAGE))
    return f"{program} & while kill -0 $!; do grep -H . {files}; sleep {period_s:g}; done"


@dataclass(frozen=True, slots=True)
class GaugeSample:
    uptime_s: float
    current: int  # as the driver reports it (µA, or mA on some)
    voltage: int  # µV, or mV


def parse_gauge_samples(text: str) -> list[GaugeSample]:
    """The sampler's ``path:value`` lines (other output, the program's, is skipped)."""
    samples: list[GaugeSample] = []
    pending: dict[str, str] = {}
    for line in text.splitlines():
        if not (match := _GREP_RE.match(line.strip())):
            continue
        path, value = match[1], match[2].strip()
        if path == UPTIME:
            pending = {UPTIME: value.split()[0]}
        elif path in (CURRENT, VOLTAGE) and UPTIME in pending:
            pending[path] = value
            if len(pending) == 3:
                try:
                    samples.append(
                        GaugeSample(
                            float(pending[UPTIME]), int(pending[CURRENT]), int(pending[VOLTAGE])
                        )
                    )
                except ValueError as error:
                    raise MeasurementError(
                        f"unreadable fuel gauge sample {pending}: {error}"
                    ) from None
                pending = {}
    return samples


@dataclass(frozen=True, slots=True)
class GaugeUnits:
    """How to turn a driver's numbers into watts: units and which sign is discharge."""

    scale_a: float  # amperes per unit of current_now
    scale_v: float
    discharge_sign: int  # -1: discharge reads negative (kernel ABI); +1: positive
    note: str

    @classmethod
    def infer(cls, idle: list[GaugeSample], charging: bool) -> GaugeUnits:
        volts = statistics.median(s.voltage for s in idle)
        if 1e6 <= volts <= 6e6:
            scale_a, scale_v, units = 1e-6, 1e-6, "µA, µV"
        elif 1000 <= volts <= 6000:
            scale_a, scale_v, units = 1e-3, 1e-3, "mA, mV (inferred from the voltage)"
        else:
            raise MeasurementError(
                f"voltage_now reads {volts:g}: neither µV nor mV of a Li-ion cell; this fuel "
                "gauge cannot be used"
            )
        current = statistics.median(s.current for s in idle)
        if charging or current == 0:
            # A charging battery's current says nothing of the driver's convention.
            return cls(scale_a, scale_v, -1, f"{units}; discharge negative assumed (kernel ABI)")
        sign = -1 if current < 0 else 1
        which = "negative (kernel ABI)" if sign < 0 else "positive (vendor driver)"
        return cls(scale_a, scale_v, sign, f"{units}; discharge reads {which}")

    def energy(self, samples: list[GaugeSample]) -> tuple[float, float]:
        """Joules drawn from the battery over the samples (trapezoids), and their span."""
        if len(samples) < 2:
            raise MeasurementError(
                f"{len(samples)} fuel gauge samples in the window: need at least two; the "
                "window ended before the phone sampled it"
            )
        watts = [
            self.discharge_sign * s.current * self.scale_a * s.voltage * self.scale_v
            for s in samples
        ]
        joules = sum(
            (pa + pb) / 2 * (b.uptime_s - a.uptime_s)
            for (a, pa), (b, pb) in pairwise(zip(samples, watts, strict=True))
        )
        span_s = samples[-1].uptime_s - samples[0].uptime_s
        hz = (len(samples) - 1) / span_s if span_s > 0 else 0.0
        if hz < MIN_GAUGE_HZ:
            raise MeasurementError(
                f"the phone sampled its fuel gauge at {hz:.1f} Hz, below {MIN_GAUGE_HZ:g} Hz; "
                "it is too busy, or its shell's sleep too coarse"
            )
        return joules, span_s


def sample_rate_hz(samples: list[GaugeSample]) -> float:
    span_s = samples[-1].uptime_s - samples[0].uptime_s
    return (len(samples) - 1) / span_s if span_s > 0 else 0.0


def _last_line(result: ShellResult) -> str:
    lines = result.text.strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}, no output"
