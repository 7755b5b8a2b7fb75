"""An emulated phone's state on disk, shared by the fake ``adb`` processes and the tests.

Layout of ``$EMULATED_ADB_HOME/<serial>/``:

- ``props.json``: what ``getprop`` answers;
- ``control.json``: the knobs a test turns (see :data:`DEFAULT_CONTROL`) and the phone's
  running state (temperature, benchmark runs so far);
- ``fs/``: the phone's writable storage (``fs/data/local/tmp`` holds what was pushed);
- ``benchmark_log.jsonl``: every benchmark_model run, with exactly what it printed (and the CPU
  seconds it spent, which the phone's power follows: :mod:`tests.emulated_phone.power`).

Every read-modify-write of ``control.json`` holds ``lock`` (flock), so a test can change a
phone while an agent talks to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tests.emulated_phone.power import DEFAULT_POWER, IDLE, Load, power_files

HOME_ENV: Final = "EMULATED_ADB_HOME"
WRITABLE: Final = ("/data/local/tmp", "/sdcard")

DEFAULT_PROPS: Final[dict[str, str]] = {
    "ro.product.model": "Pixel 7",
    "ro.product.manufacturer": "Google",
    "ro.product.name": "panther",
    "ro.product.device": "panther",
    "ro.soc.manufacturer": "Google",
    "ro.soc.model": "GS201",
    "ro.board.platform": "gs201",
    "ro.hardware": "panther",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.build.fingerprint": "google/panther/panther:14/UQ1A.240205.004/11269751:user/release-keys",
}

# Four little cores, three mid, one prime: the fastest cluster is cpu7 alone.
DEFAULT_CPUS: Final = [
    *({"max_khz": 1803000, "cur_khz": 1803000, "governor": "schedutil"} for _ in range(4)),
    *({"max_khz": 2348000, "cur_khz": 2348000, "governor": "schedutil"} for _ in range(3)),
    {"max_khz": 2850000, "cur_khz": 2850000, "governor": "schedutil"},
]

# Thermal zones as (type, offset from the phone's temperature in °C); None reads as 0, like
# the current-limit zones real phones list among their thermometers.
ZONES: Final[list[tuple[str, float | None]]] = [
    ("cpu-0-0-usr", -2.0),
    ("cpu-0-1-usr", -2.5),
    ("cpu-1-0-usr", -1.0),
    ("cpu-1-2-usr", 0.0),
    ("gpuss-0-usr", -3.0),
    ("skin-therm", -8.0),
    ("battery", -5.0),
    ("pm8350b-ibat-lvl0", None),
    ("modem-0-usr", -4.0),
]

DEFAULT_CONTROL: Final[dict[str, Any]] = {
    # What `adb devices` shows: "device", "unauthorized" or "offline".
    "state": "device",
    # Unplugged: not listed, and every command fails with "device '<serial>' not found".
    "offline": False,
    # Unplug itself once this many benchmark runs have finished.
    "offline_after_runs": None,
    # Hang (sleep hang_s) on this adb command ("push", "shell", "devices"), or on shell
    # commands running this program ("benchmark_model", "dumpsys", "grep", "getprop").
    "hang_on": None,
    "hang_s": 3600.0,
    # Temperature model: the hottest CPU zone reads temperature_c; each benchmark run adds
    # heat_per_run_c; it cools by cool_per_s_c per second of wall time, down to ambient_c.
    "temperature_c": 32.0,
    "ambient_c": 30.0,
    "heat_per_run_c": 0.2,
    "cool_per_s_c": 0.0,
    # Battery (dumpsys battery and the "battery" zone) relative to temperature_c.
    "battery_offset_c": -5.0,
    # "info": newer benchmark_model (INFO: prefix, percentiles, on stderr);
    # "legacy": older builds (no prefix, no percentiles, averages as %g, on stdout).
    "output_form": "info",
    "cpus": DEFAULT_CPUS,
    # A burst of interference: benchmark runs number `runs` (0 = the first) really run
    # `factor` times slower (each inference is stretched by busy-waiting).
    "slow_runs": {"runs": [], "factor": 1.0},
    # Files that exist but cannot be read (like a thermal zone SELinux denies).
    "unreadable": ["/sys/class/thermal/thermal_zone8/temp"],
    # Rails, fuel gauge, root and charging (see tests.emulated_phone.power.DEFAULT_POWER);
    # change some with PhoneDir.set_power(...).
    "power": DEFAULT_POWER,
    # Running state, kept by the phone itself.
    "runs": 0,
    "updated_at": None,
    # When the phone booted (its uptime and ODPM timestamps count from here), and the CPU
    # seconds its benchmark runs spent (its energy follows them).
    "booted_at": None,
    "cpu_s_done": 0.0,
}


@dataclass(frozen=True, slots=True)
class PhoneDir:
    """One emulated phone's directory."""

    root: Path

    @property
    def serial(self) -> str:
        return self.root.name

    @property
    def control_path(self) -> Path:
        return self.root / "control.json"

    @property
    def props_path(self) -> Path:
        return self.root / "props.json"

    @property
    def log_path(self) -> Path:
        return self.root / "benchmark_log.jsonl"

    @property
    def fs(self) -> Path:
        return self.root / "fs"

    def exists(self) -> bool:
        return self.control_path.is_file()

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The control, cooled to now, held under the lock; changes are saved on exit."""
        with (self.root / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                control = json.loads(self.control_path.read_text())
                _cool(control, time.time())
                yield control
                tmp = self.control_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(control, indent=1))
                os.replace(tmp, self.control_path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def control(self) -> dict[str, Any]:
        with self.locked() as control:
            return dict(control)

    def update(self, **changes: Any) -> dict[str, Any]:
        unknown = set(changes) - set(DEFAULT_CONTROL)
        if unknown:
            raise KeyError(f"unknown control fields {sorted(unknown)}")
        with self.locked() as control:
            control.update(changes)
            return dict(control)

    def set_power(self, **changes: Any) -> dict[str, Any]:
        """Turn power knobs: ``rails``, ``rooted``, ``charging``... (DEFAULT_POWER's keys)."""
        unknown = set(changes) - set(DEFAULT_POWER)
        if unknown:
            raise KeyError(f"unknown power fields {sorted(unknown)}")
        with self.locked() as control:
            control["power"] = {**control["power"], **changes}
            return dict(control["power"])

    def props(self) -> dict[str, str]:
        props: dict[str, str] = json.loads(self.props_path.read_text())
        return props

    def host_path(self, device_path: str) -> Path:
        """Where a path of the phone's writable storage lives on the host."""
        return self.fs / os.path.normpath(device_path).lstrip("/")

    def writable(self, device_path: str) -> bool:
        path = os.path.normpath(device_path)
        return any(path == w or path.startswith(w + "/") for w in WRITABLE)

    def benchmark_log(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def append_log(self, entry: dict[str, Any]) -> None:
        with self.log_path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")


def create_phone(
    home: Path, serial: str, props: dict[str, str] | None = None, **control: Any
) -> PhoneDir:
    phone = PhoneDir(home / serial)
    phone.root.mkdir(parents=True, exist_ok=False)
    for writable in WRITABLE:
        phone.host_path(writable).mkdir(parents=True)
    phone.props_path.write_text(
        json.dumps({**DEFAULT_PROPS, "ro.serialno": serial, **(props or {})})
    )
    unknown = set(control) - set(DEFAULT_CONTROL)
    if unknown:
        raise KeyError(f"unknown control fields {sorted(unknown)}")
    now = time.time()
    phone.control_path.write_text(
        json.dumps({**DEFAULT_CONTROL, **control, "updated_at": now, "booted_at": now})
    )
    return phone


def phones(home: Path) -> list[PhoneDir]:
    return sorted(
        (PhoneDir(p) for p in home.iterdir() if (p / "control.json").is_file()),
        key=lambda p: p.serial,
    )


def _cool(control: dict[str, Any], now: float) -> None:
    last = control.get("updated_at") or now
    drop = max(0.0, now - last) * float(control["cool_per_s_c"])
    control["temperature_c"] = max(float(control["ambient_c"]), control["temperature_c"] - drop)
    control["updated_at"] = now


def unplugged(control: dict[str, Any]) -> bool:
    after = control.get("offline_after_runs")
    return bool(control["offline"]) or (after is not None and control["runs"] >= after)


# -- the virtual /sys ---------------------------------------------------------------------------


def sysfs(control: dict[str, Any], root: bool = False, load: Load = IDLE) -> dict[str, str | None]:
    """Every emulated sysfs (and /proc) file and its content; None for a file that cannot be
    read (by root too for ``unreadable`` ones; by the shell user for root-only ones)."""
    files: dict[str, str | None] = power_files(control, root, load)
    temp = float(control["temperature_c"])
    for index, (kind, offset) in enumerate(ZONES):
        zone = f"/sys/class/thermal/thermal_zone{index}"
        files[f"{zone}/type"] = kind
        if kind == "battery":
            offset = float(control["battery_offset_c"])
        files[f"{zone}/temp"] = "0" if offset is None else str(round((temp + offset) * 1000))
    cpus = control["cpus"]
    files["/sys/devices/system/cpu/online"] = f"0-{len(cpus) - 1}"
    for index, cpu in enumerate(cpus):
        base = f"/sys/devices/system/cpu/cpu{index}/cpufreq"
        files[f"{base}/cpuinfo_max_freq"] = str(cpu["max_khz"])
        files[f"{base}/scaling_max_freq"] = str(cpu["max_khz"])
        files[f"{base}/scaling_cur_freq"] = str(cpu["cur_khz"])
        files[f"{base}/scaling_governor"] = str(cpu["governor"])
    for pattern in control["unreadable"]:
        for path in files:
            if fnmatch.fnmatchcase(path, pattern):
                files[path] = None
    return files


def sysfs_glob(files: dict[str, str | None], pattern: str) -> list[str]:
    """Paths matching a shell glob, segment by segment as sh matches them."""
    parts = pattern.split("/")
    return sorted(
        path
        for path in files
        if len(path.split("/")) == len(parts)
        and all(fnmatch.fnmatchcase(a, b) for a, b in zip(path.split("/"), parts, strict=True))
    )


# The ``make_phones`` fixture: ``make_phones(n, props=None, **control)``.
MakePhones = Callable[..., list[PhoneDir]]
