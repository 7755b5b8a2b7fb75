"""A host's energy counter: Linux powercap RAPL (``/sys/class/powercap/intel-rapl:N``).

RAPL counts the package's energy in microjoules (AMD's Zen exposes it under the same name). It
covers the whole package, every process, so a window's energy above idle is the model's only
when nothing else runs: the same quiet the timed runs need. Most VMs expose no RAPL (this one
has no ``/sys/class/powercap`` at all), and since Linux 5.10 ``energy_uj`` is readable by root
only; either way the host says so instead of giving energy another meaning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device_agents.metrics import EnergyWindow

POWERCAP_ROOT = Path("/sys/class/powercap")
METHOD = "Linux powercap RAPL package counters, window above an equal idle window"
# Long enough for the counter (updated about every millisecond) to resolve a small layer.
WINDOW_S = 1.0


class NoEnergyCounter(RuntimeError):
    """This host exposes no energy counter hwlat can read; the message says what is missing."""


@dataclass(frozen=True)
class RaplZone:
    path: Path  # .../intel-rapl:0
    name: str  # "package-0"
    max_uj: int  # the counter wraps at this value

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text())


def package_zones(root: Path = POWERCAP_ROOT) -> list[RaplZone]:
    """The top-level (package) RAPL zones, or why there are none."""
    if not root.is_dir():
        raise NoEnergyCounter(f"this host exposes no energy counter ({root} does not exist)")
    zones = []
    for path in sorted(root.glob("intel-rapl:[0-9]*")):
        if path.name.count(":") != 1:  # intel-rapl:0:0 is a sub-zone of package 0
            continue
        try:
            zone = RaplZone(
                path,
                (path / "name").read_text().strip(),
                int((path / "max_energy_range_uj").read_text()),
            )
            zone.read_uj()
        except PermissionError:
            raise NoEnergyCounter(
                f"{path / 'energy_uj'} is readable by root only (Linux 5.10 and later); run "
                "the agent as root or give its user read access"
            ) from None
        except (OSError, ValueError) as error:
            raise NoEnergyCounter(f"cannot read RAPL zone {path}: {error}") from None
        zones.append(zone)
    if not zones:
        raise NoEnergyCounter(f"{root} holds no RAPL package zone (intel-rapl:N)")
    return zones


def _total_uj(zones: list[RaplZone]) -> list[int]:
    return [z.read_uj() for z in zones]


def _delta_j(zones: list[RaplZone], before: list[int], after: list[int]) -> float:
    # One wrap at most: a package counter's range is hours even at full power.
    return sum((b - a) % (z.max_uj + 1) for z, a, b in zip(zones, before, after, strict=True)) / 1e6


def measure_window(
    invoke: Callable[[], None],
    zones: list[RaplZone],
    window_s: float = WINDOW_S,
    sleep: Callable[[float], None] = time.sleep,
) -> EnergyWindow:
    """Run ``invoke`` back to back for ``window_s``, then idle as long; both windows' energy."""
    invoke()  # warm: the first inference allocates and packs weights
    before, started = _total_uj(zones), time.monotonic()
    inferences = 0
    while time.monotonic() - started < window_s:
        invoke()
        inferences += 1
    active_s, after = time.monotonic() - started, _total_uj(zones)
    idle_before, idle_started = _total_uj(zones), time.monotonic()
    sleep(active_s)
    idle_s, idle_after = time.monotonic() - idle_started, _total_uj(zones)
    return EnergyWindow(
        active_j=_delta_j(zones, before, after),
        active_s=active_s,
        inferences=inferences,
        idle_j=_delta_j(zones, idle_before, idle_after),
        idle_s=idle_s,
        detail={"zones": [z.name for z in zones]},
    )
