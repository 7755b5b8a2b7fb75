"""The emulated phone's power: ODPM rails and a fuel gauge that follow the work it really ran.

The phone draws ``idle_w`` all the time, plus ``cpu_w`` for every second of CPU time its
benchmark_model really spent (the thread running the model, measured with its CPU clock: a
bigger model costs more CPU per inference, so more energy). Its energy since boot is therefore::

    E(t) = idle_w * (t - booted_at) + cpu_w * (cpu_s_done + cpu_s of a benchmark running now)

The rails (a Pixel 6's two ODPM chips, ``/sys/bus/iio/devices/iio:device{0,1}``) share that
energy out: the idle power by fixed shares (a part stays outside every rail, as the display's
backlight and the PMIC's losses do), the benchmark's work to the big cluster, the interconnect
and the memory. ``energy_value`` is readable by root only. The fuel gauge reports the power of
the moment: idle, plus ``cpu_w`` times the running benchmark's share of a core since the gauge
was last read, as ``current_now`` (µA, discharge negative as the kernel ABI says, or positive
as some vendors' drivers report it) and ``voltage_now`` (µV). Charging adds ``charge_a`` into
the battery.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

# The knobs of ``control["power"]``.
DEFAULT_POWER: Final[dict[str, Any]] = {
    # The on-device power monitor (Pixel 6 and later); False: no /sys/bus/iio energy files.
    "rails": True,
    # `su` exists and grants root; False: a user build without su.
    "rooted": True,
    # `adb root` was run: the shell itself is root and reads root-only files.
    "adbd_root": False,
    # On a charger (battery status Charging, usb online 1).
    "charging": False,
    "idle_w": 0.9,
    "cpu_w": 2.4,
    "charge_a": 0.5,
    "voltage_uv": 3_950_000,
    # The kernel ABI's sign (negative current is discharge); False: discharge reads positive.
    "discharge_negative": True,
}

# (chip, channel, rail, subsystem, share of idle power, share of the benchmark's power); the
# rail names are a Pixel 6's.
RAILS: Final = (
    ("s2mpg10-odpm", 0, "S10M_VDD_TPU", "TPU", 0.02, 0.0),
    ("s2mpg10-odpm", 1, "VSYS_PWR_MODEM", "Cellular", 0.08, 0.0),
    ("s2mpg10-odpm", 2, "VSYS_PWR_RFFE", "Cellular", 0.02, 0.0),
    ("s2mpg10-odpm", 3, "S2M_VDD_CPUCL2", "CPU(BIG)", 0.03, 0.7),
    ("s2mpg10-odpm", 4, "S3M_VDD_CPUCL1", "CPU(MID)", 0.03, 0.0),
    ("s2mpg10-odpm", 5, "S4M_VDD_CPUCL0", "CPU(LITTLE)", 0.06, 0.0),
    ("s2mpg10-odpm", 6, "S5M_VDD_INT", "System", 0.08, 0.1),
    ("s2mpg10-odpm", 7, "S1M_VDD_MIF", "Memory", 0.08, 0.2),
    ("s2mpg11-odpm", 0, "VSYS_PWR_DISPLAY", "Display", 0.20, 0.0),
    ("s2mpg11-odpm", 1, "L2S_VDD_AOC_RET", "AOC", 0.02, 0.0),
    ("s2mpg11-odpm", 2, "S9S_VDD_AOC", "AOC", 0.04, 0.0),
    ("s2mpg11-odpm", 3, "S2S_VDD_G3D", "GPU", 0.04, 0.0),
    ("s2mpg11-odpm", 4, "VSYS_PWR_WLAN_BT", "WLAN-BT", 0.05, 0.0),
)
IIO: Final = "/sys/bus/iio/devices"
SUPPLY: Final = "/sys/class/power_supply"


@dataclass
class Load:
    """The benchmark running in this process right now (the background form of the shell):
    its thread's CPU clock, and where the gauge last read it."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: int | None = None
    _start_cpu_s: float = 0.0
    _last: tuple[float, float] | None = None  # (monotonic s, cpu s) at the last gauge read

    def start(self) -> None:
        """Called by the benchmark's own thread as it starts."""
        with self._lock:
            self._clock = time.pthread_getcpuclockid(threading.get_ident())
            self._start_cpu_s = time.clock_gettime(self._clock)
            self._last = (time.monotonic(), 0.0)

    def stop(self) -> None:
        with self._lock:
            self._clock = None

    def cpu_s(self) -> float:
        with self._lock:
            return self._cpu_s_locked()

    def _cpu_s_locked(self) -> float:
        if self._clock is None:
            return 0.0
        return time.clock_gettime(self._clock) - self._start_cpu_s

    def share_of_a_core(self) -> float:
        """How busy the benchmark kept its core since the previous reading (0 when none runs)."""
        with self._lock:
            if self._clock is None:
                self._last = None
                return 0.0
            now, cpu = time.monotonic(), self._cpu_s_locked()
            last, self._last = self._last, (now, cpu)
        if last is None or now <= last[0]:
            return 0.0
        return min(1.0, max(0.0, (cpu - last[1]) / (now - last[0])))


IDLE: Final = Load()  # no benchmark running in this process


def power_files(control: dict[str, Any], root: bool, load: Load = IDLE) -> dict[str, str | None]:
    """The power supply, uptime and (when present) ODPM files, as ``state.sysfs`` lists them."""
    power = control["power"]
    now = time.time()
    up_s = now - float(control["booted_at"])
    files: dict[str, str | None] = {"/proc/uptime": f"{up_s:.2f} {up_s * 7:.2f}"}
    charging = bool(power["charging"])
    files[f"{SUPPLY}/battery/status"] = "Charging" if charging else "Discharging"
    files[f"{SUPPLY}/usb/online"] = "1" if charging else "0"
    files[f"{SUPPLY}/ac/online"] = "0"
    watts = float(power["idle_w"]) + float(power["cpu_w"]) * load.share_of_a_core()
    volts = float(power["voltage_uv"]) / 1e6
    into_battery_a = (float(power["charge_a"]) if charging else 0.0) - watts / volts
    sign = 1 if power["discharge_negative"] else -1
    files[f"{SUPPLY}/battery/current_now"] = str(round(sign * into_battery_a * 1e6))
    files[f"{SUPPLY}/battery/voltage_now"] = str(round(volts * 1e6))
    if power["rails"]:
        files.update(_rails(control, up_s, load, readable=root or bool(power["adbd_root"])))
    return files


def _rails(
    control: dict[str, Any], up_s: float, load: Load, readable: bool
) -> dict[str, str | None]:
    power = control["power"]
    idle_j = float(power["idle_w"]) * up_s
    work_j = float(power["cpu_w"]) * (float(control["cpu_s_done"]) + load.cpu_s())
    stamp_ms = int(up_s * 1000)
    files: dict[str, str | None] = {}
    for index, chip in enumerate(dict.fromkeys(r[0] for r in RAILS)):
        device = f"{IIO}/iio:device{index}"
        rails = [r for r in RAILS if r[0] == chip]
        files[f"{device}/name"] = chip
        files[f"{device}/enabled_rails"] = "\n".join(
            f"CH{ch}[{rail}]:{subsystem}" for _, ch, rail, subsystem, _, _ in rails
        )
        energy = [f"t={stamp_ms}"] + [
            f"CH{ch}(T={stamp_ms})[{rail}], {round((idle * idle_j + work * work_j) * 1e6)}"
            for _, ch, rail, _, idle, work in rails
        ]
        # Mode 0440 root: a shell user gets "Permission denied", as on a Pixel.
        files[f"{device}/energy_value"] = "\n".join(energy) if readable else None
    return files
