"""The host as a device: LiteRT or ONNX Runtime on this machine's CPU."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from device_agents import rapl
from device_agents.cpu_load import CpuShares, CpuSnapshot, other_cpu_fraction, shares
from device_agents.errors import MeasurementError
from device_agents.memory import MemoryUnmeasurable, measure_peak_memory
from device_agents.metrics import DeviceMetric, MetricReadings
from device_agents.probe import PROBE_KEY, SpeedProbe
from device_agents.profiling import Conditions, Measured
from device_agents.quality import Evidence, tail_ratio
from device_agents.runners import Runner, RuntimeOptions, Timing, measure, runner_for
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.enums import Delegate, DeviceKind, Precision, Runtime
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
    runtime: Runtime = Runtime.litert
    name: str = field(default_factory=platform.node)
    num_threads: int = 1
    use_xnnpack: bool = True
    # int8 models are the fp32 ones quantised by the converter (models.export): another
    # device to the service, with its own fingerprint.
    precision: Precision = Precision.FP32
    cpu_affinity: frozenset[int] | None = None
    keep_samples: bool = False
    cache_dir: Path | None = None
    # Seed of the random inputs the models are timed on.
    seed: int = 0
    # Other processes' share of the CPUs above which a measurement waits (None: never wait).
    # Another busy process inflates latencies, as heat does on a phone.
    max_busy_fraction: float | None = 0.3
    max_wait_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    # A quiet reading is trusted this long: sampling costs 0.25 s, a measurement ~0.5 s.
    quiet_for_s: float = 2.0
    # Time a small fixed model before and after every window (the evidence a quality gate
    # judges; see device_agents.quality).
    use_probe: bool = True
    # Where the RAPL energy counters are (a test points it at counters it drives).
    powercap_root: Path = rapl.POWERCAP_ROOT
    _quiet_until: float = field(default=0.0, init=False, repr=False)
    _runner: Runner = field(init=False, repr=False)
    _probe: SpeedProbe | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._runner = runner_for(self.runtime)

    @property
    def tool_version(self) -> str:
        return self._runner.version

    @property
    def export_format(self) -> ExportFormat:
        return ExportFormat.TFLITE if self.runtime is Runtime.litert else ExportFormat.ONNX

    @property
    def options(self) -> RuntimeOptions:
        return RuntimeOptions(self.num_threads, self.use_xnnpack, self.cpu_affinity)

    def describe(self) -> DeviceIn:
        xnnpack = self.runtime is Runtime.litert and self.use_xnnpack
        return DeviceIn(
            name=self.name,
            kind=DeviceKind.host,
            model=cpu_model()[:200],
            soc=platform.machine(),
            abi=platform.machine(),
            os_version=f"{platform.system()} {platform.release()}"[:200],
            runtime=self.runtime,
            runtime_version=self.tool_version.split()[-1][:64],
            delegate=Delegate.xnnpack if xnnpack else Delegate.cpu,
            threads=self.num_threads,
            precision=self.precision,
            affinity_mask=_mask(self.cpu_affinity),
            governor=governor()[:64],
            extra={"cores": os.cpu_count(), "python": platform.python_version()},
        )

    def measure_layer(self, key: LayerKey, timing: Timing) -> Measured:
        started = time.monotonic()
        model = self._model_file(key)
        return self._measure(model, timing, time.monotonic() - started)

    def measure_network(self, space: SearchSpace, arch: Sequence[int], timing: Timing) -> Measured:
        started = time.monotonic()
        model = self._model_file(space.network(arch))
        return self._measure(model, timing, time.monotonic() - started)

    def measure_metrics(
        self, model: LayerKey | Sequence[LayerKey], metrics: frozenset[DeviceMetric], timing: Timing
    ) -> MetricReadings:
        """Peak memory in a fresh process (device_agents.memory); energy from RAPL where the
        host has it. A metric this host cannot measure is stored as null, with the reason."""
        path = self._model_file(model)
        readings = MetricReadings()
        if DeviceMetric.memory in metrics:
            try:
                peak = measure_peak_memory(path, self.runtime, self.options)
                readings = replace(
                    readings, peak_memory_bytes=peak.peak_bytes, memory_method=peak.method
                )
            except MemoryUnmeasurable as error:
                readings = replace(readings, memory_method=f"unavailable: {error}")
        if DeviceMetric.energy in metrics:
            readings = self._energy(path, readings)
        return readings

    def check_metrics(self, metrics: frozenset[DeviceMetric]) -> None:
        """Nothing to refuse ahead: a host without a counter stores why, per row."""

    def _energy(self, path: Path, readings: MetricReadings) -> MetricReadings:
        try:
            zones = rapl.package_zones(self.powercap_root)
        except rapl.NoEnergyCounter as error:
            return replace(readings, energy_method=f"unavailable: {error}")
        invoke = self._runner.prepare(path, self.options, seed=self.seed)
        self.wait_until_quiet()
        window = rapl.measure_window(invoke, zones, sleep=self.sleep)
        return replace(
            readings,
            energy_mj=window.energy_per_inference_mj(),
            energy_method=rapl.METHOD,
            energy_detail=window.evidence(),
        )

    def _model_file(self, model: LayerKey | Sequence[LayerKey]) -> Path:
        """The cached export of a layer (a key) or a network (its keys), in this device's
        format and precision: what its timed runs and its metric pass both load."""
        if isinstance(model, LayerKey):
            return export_layer(model, self.export_format, self.precision, cache_dir=self.cache_dir)
        return export_keys(model, self.export_format, self.precision, cache_dir=self.cache_dir)

    def wait_until_quiet(self) -> float | None:
        """Wait while other processes keep the CPUs busy; their share when it was sampled
        (None when a recent quiet reading still stands, or nothing can be read)."""
        if self.max_busy_fraction is None or time.monotonic() < self._quiet_until:
            return None
        deadline = time.monotonic() + self.max_wait_s
        while True:
            busy = other_cpu_fraction()
            if busy is None or busy <= self.max_busy_fraction:
                self._quiet_until = time.monotonic() + self.quiet_for_s
                return busy
            if time.monotonic() > deadline:
                raise MeasurementError(
                    f"host still busy after {self.max_wait_s:.0f}s: other processes use "
                    f"{100 * busy:.0f}% of the CPUs (limit {100 * self.max_busy_fraction:.0f}%); "
                    "stop them or raise --max-busy-pct"
                )
            self.sleep(1.0)

    def _quiet_during(self, cpu: CpuShares | None) -> bool:
        limit = self.max_busy_fraction
        return limit is not None and cpu is not None and cpu.other <= limit

    def probe(self) -> SpeedProbe:
        if self._probe is None:
            model = export_layer(PROBE_KEY, self.export_format, cache_dir=self.cache_dir)
            self._probe = SpeedProbe(self._runner, model, self.options)
        return self._probe

    def _measure(self, model: Path, timing: Timing, export_s: float) -> Measured:
        # The probe first: building it (an export, 20 warm-up runs) is work that the quiet
        # check and the temperature reading below must come after, not before.
        probe = self.probe() if self.use_probe else None
        self.wait_until_quiet()
        before = max_temperature_c()
        probe_before = probe.read_ms() if probe else None
        cpu_before = CpuSnapshot.take()
        started = time.monotonic()
        runs = measure(self._runner, model, self.options, timing, seed=self.seed)
        measure_s = time.monotonic() - started
        cpu = shares(cpu_before, CpuSnapshot.take())
        if self._quiet_during(cpu):
            # The window's own reading is a quiet reading too: the next measurement need not
            # sleep to sample the machine again (a 0.25 s sample every 2 s cost an eighth of
            # a network job's time).
            self._quiet_until = time.monotonic() + self.quiet_for_s
        probe_ratio = None
        if probe is not None and probe_before is not None:
            probe_ratio = probe.ratio_and_learn(probe_before, probe.read_ms())
        return Measured(
            statistics=runs.statistics,
            samples_ms=runs.samples_ms if self.keep_samples else None,
            conditions=Conditions(before, max_temperature_c(), frequencies_khz()),
            export_s=export_s,
            measure_s=measure_s,
            evidence=Evidence(
                probe_ratio=probe_ratio,
                tail_ratio=tail_ratio(runs.samples_ms),
                other_cpu=None if cpu is None else cpu.other,
                steal=None if cpu is None else cpu.steal,
            ),
        )


def _mask(cpus: frozenset[int] | None) -> str:
    return "" if cpus is None else format(sum(1 << c for c in cpus), "x")
