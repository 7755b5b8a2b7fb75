"""Readers of what a phone's shell prints (pure: text in, values out).

The Android backend runs the commands; everything that interprets their output lives here, so
that each reader can be tested on captured text, as :mod:`device_agents.benchmark_output` is
for benchmark_model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

THERMAL_GLOB: Final = "/sys/class/thermal/thermal_zone*"
CPU_GLOB: Final = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq"

# Zone types that measure the application processor. Phones name them differently (cpu-1-0-usr,
# soc_thermal, tsens_tz_sensor3, mtktscpu, BIG, LITTLE); zones of batteries, chargers, modems or
# current limits (ibat-lvl0) say nothing about how hot the CPU runs.
DEFAULT_CPU_ZONES: Final = r"(?i)cpu|soc|tsens|cluster|big|little|mid|prime|apc"

_CPU_PATH_RE: Final = re.compile(r"/sys/devices/system/cpu/cpu(\d+)/cpufreq/(\w+)$")
_ZONE_PATH_RE: Final = re.compile(r"/sys/class/thermal/(thermal_zone\d+)/(type|temp)$")
_UNCONSUMED_RE: Final = re.compile(r"Unconsumed cmdline flags:\s*(.*)$", re.MULTILINE)
_BATTERY_TEMP_RE: Final = re.compile(r"^\s*temperature:\s*(-?\d+)\s*$", re.MULTILINE)
# Readings outside this range are sensors that are off or not thermometers at all.
_PLAUSIBLE_C: Final = (-30.0, 150.0)


def parse_grep_values(text: str) -> dict[str, str]:
    """``grep -Hs . FILES`` output: each file's first line by path.

    grep names every file it read, unlike ``cat FILES`` whose values lose their file as soon as
    one file is unreadable or a CPU is offline.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith("/") and path not in values:
            values[path] = value.strip()
    return values


def unconsumed_flags(output: str) -> list[str]:
    """Flags benchmark_model did not know; it only warns, so a misspelt flag changes nothing."""
    return [flag for match in _UNCONSUMED_RE.finditer(output) for flag in match[1].split()]


def celsius(raw: str) -> float | None:
    """A thermal zone's ``temp`` in °C: millidegrees on most kernels, degrees on some."""
    try:
        value = float(raw)
    except ValueError:
        return None
    if abs(value) >= 1000:
        value /= 1000.0
    elif abs(value) >= 200:
        value /= 10.0  # a few vendors report tenths of a degree
    low, high = _PLAUSIBLE_C
    return value if low < value < high and value != 0 else None


@dataclass(frozen=True, slots=True)
class ThermalReading:
    """Thermal zones (``name -> (type, °C)``, plausible ones only) and the battery."""

    zones: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    battery_c: float | None = None

    def cpu_c(self, pattern: str = DEFAULT_CPU_ZONES) -> float | None:
        """The hottest zone whose type matches ``pattern``; all zones if none matches."""
        regex = re.compile(pattern)
        matching = [t for kind, t in self.zones.values() if regex.search(kind)]
        chosen = matching or [t for _, t in self.zones.values()]
        return max(chosen) if chosen else None

    def describe(self, pattern: str = DEFAULT_CPU_ZONES) -> str:
        cpu = self.cpu_c(pattern)
        parts = [f"CPU zones {cpu:.1f} °C" if cpu is not None else "no readable CPU zone"]
        if self.battery_c is not None:
            parts.append(f"battery {self.battery_c:.1f} °C")
        return ", ".join(parts)


def thermal_reading(values: Mapping[str, str], battery_c: float | None) -> ThermalReading:
    types: dict[str, str] = {}
    temps: dict[str, float] = {}
    for path, value in values.items():
        if not (match := _ZONE_PATH_RE.match(path)):
            continue
        zone, leaf = match.groups()
        if leaf == "type":
            types[zone] = value
        elif (temp := celsius(value)) is not None:
            temps[zone] = temp
    zones = {zone: (types.get(zone, zone), temp) for zone, temp in sorted(temps.items())}
    return ThermalReading(zones, battery_c)


def battery_celsius(text: str) -> float | None:
    """``dumpsys battery`` reports the temperature in tenths of a degree."""
    match = _BATTERY_TEMP_RE.search(text)
    return int(match[1]) / 10.0 if match else None


def cpu_values(values: Mapping[str, str], leaf: str) -> dict[int, str]:
    """``{cpu: value}`` of one cpufreq file (``scaling_governor``, ``scaling_cur_freq``...)."""
    found: dict[int, str] = {}
    for path, value in values.items():
        match = _CPU_PATH_RE.match(path)
        if match and match[2] == leaf:
            found[int(match[1])] = value
    return dict(sorted(found.items()))


def cpu_khz(values: Mapping[str, str], leaf: str) -> dict[int, int]:
    found = {}
    for cpu, text in cpu_values(values, leaf).items():
        if text.isdigit():
            found[cpu] = int(text)
    return found


def fastest_cores(max_khz: Mapping[int, int], threads: int) -> frozenset[int]:
    """The fastest cluster (by maximum frequency), growing to slower ones until there are
    ``threads`` cores: where a single-threaded benchmark belongs on a big.LITTLE phone."""
    if not max_khz:
        raise ValueError("no CPU frequencies to choose big cores from")
    chosen: set[int] = set()
    for khz in sorted(set(max_khz.values()), reverse=True):
        chosen |= {cpu for cpu, f in max_khz.items() if f == khz}
        if len(chosen) >= threads:
            break
    return frozenset(chosen)


def mask_hex(cpus: Iterable[int]) -> str:
    """The ``taskset`` mask of ``cpus``, e.g. ``{4, 5, 6, 7} -> "f0"``."""
    mask = sum(1 << c for c in set(cpus))
    if mask == 0:
        raise ValueError("an affinity mask needs at least one CPU")
    return format(mask, "x")


def summarize(values: Mapping[int, str]) -> str:
    """One value per CPU as a short label: ``schedutil`` or ``0-3:schedutil,4-7:performance``."""
    distinct = sorted(set(values.values()))
    if len(distinct) <= 1:
        return distinct[0] if distinct else ""
    groups = []
    for value in distinct:
        cpus = sorted(c for c, v in values.items() if v == value)
        groups.append(f"{_ranges(cpus)}:{value}")
    return ",".join(groups)


def _ranges(cpus: list[int]) -> str:
    spans: list[list[int]] = []
    for cpu in cpus:
        if spans and cpu == spans[-1][1] + 1:
            spans[-1][1] = cpu
        else:
            spans.append([cpu, cpu])
    return "+".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
