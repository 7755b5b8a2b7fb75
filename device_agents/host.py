"""The host as a device: LiteRT or ONNX Runtime on this machine's CPU."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_agents.profiling import Conditions, Measured
from device_agents.runners import Runner, RunSettings, RuntimeName, measure, runner_for
from models import LayerKey, SearchSpace
from models.export import ExportFormat, export_keys, export_layer

CPU_ROOT = Path("/sys/devices/system/cpu")
THERMAL_ROOT = Path("/sys/class/thermal")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def governor(cpu: int = 0) -> str:
    """scaling_governor where the kernel exposes it (not in most VMs): '' otherwise."""
    try:
        return (CPU_ROOT / f"cpu{cpu}" / "cpufreq" / "scaling_governor").read_text().strip()
    except OSError:
        return ""


def frequencies_khz() -> dict[str, int] | None:
    found = {}
    for path in sorted(CPU_ROOT.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            found[path.parent.parent.name] = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
    return found or None


def max_temperature_c() -> float | None:
    temps = []
    for path in THERMAL_ROOT.glob("thermal_zone*/temp"):
        try:
            temps.append(int(path.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(temps) if temps else None


@dataclass
class HostBackend:
    runtime: RuntimeName = RuntimeName.litert
    name: str = field(default_factory=platform.node)
    num_threads: int = 1
    use_xnnpack: bool = True
    cpu_affinity: frozenset[int] | None = None
    keep_samples: bool = False
    cache_dir: Path | None = None
    _runner: Runner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._runner = runner_for(self.runtime)

    @property
    def tool_version(self) -> str:
        return self._runner.version

    @property
    def export_format(self) -> ExportFormat:
        return ExportFormat.TFLITE if self.runtime is RuntimeName.litert else ExportFormat.ONNX

    def describe(self) -> dict[str, Any]:
        delegate = "xnnpack" if self.runtime is RuntimeName.litert and self.use_xnnpack else "cpu"
        return {
            "name": self.name,
            "kind": "host",
            "model": cpu_model(),
            "soc": platform.machine(),
            "abi": platform.machine(),
            "os_version": f"{platform.system()} {platform.release()}",
            "runtime": self.runtime.value,
            "runtime_version": self.tool_version.split()[-1],
            "delegate": delegate,
            "threads": self.num_threads,
            "precision": "fp32",
            "affinity_mask": _mask(self.cpu_affinity),
            "governor": governor(),
            "extra": {"cores": os.cpu_count(), "python": platform.python_version()},
        }

    def settings(self, **overrides: Any) -> RunSettings:
        return RunSettings(
            num_threads=self.num_threads,
            use_xnnpack=self.use_xnnpack,
            cpu_affinity=self.cpu_affinity,
            **overrides,
        )

    def measure_layer(self, key: LayerKey, settings: RunSettings) -> Measured:
        started = time.monotonic()
        model = export_layer(key, self.export_format, cache_dir=self.cache_dir)
        return self._measure(model, settings, time.monotonic() - started)

    def measure_network(
        self, space: SearchSpace, arch: Sequence[int], settings: RunSettings
    ) -> Measured:
        started = time.monotonic()
        model = export_keys(space.network(arch), self.export_format, cache_dir=self.cache_dir)
        return self._measure(model, settings, time.monotonic() - started)

    def _measure(self, model: Path, settings: RunSettings, export_s: float) -> Measured:
        before = max_temperature_c()
        started = time.monotonic()
        timing = measure(self._runner, model, settings)
        measure_s = time.monotonic() - started
        return Measured(
            statistics=timing.statistics,
            samples_ms=timing.samples_ms if self.keep_samples else None,
            conditions=Conditions(before, max_temperature_c(), frequencies_khz()),
            export_s=export_s,
            measure_s=measure_s,
        )


def _mask(cpus: frozenset[int] | None) -> str:
    return "" if cpus is None else format(sum(1 << c for c in cpus), "x")
