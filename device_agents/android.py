"""Android phones over adb: TFLite's ``benchmark_model`` pinned with ``taskset``.

For each model the backend pushes the file once (named by its digest), waits while the phone is
too hot, runs ``taskset MASK benchmark_model --graph=... --num_threads=N --warmup_runs=W
--num_runs=R ...`` under a timeout, and reads the output with
:mod:`device_agents.benchmark_output`. Interpreting shell output lives in
:mod:`device_agents.android_text`; this module only decides what to run.

Metrics get runs of their own, after the timed ones, since their probes disturb timing: peak
memory is a run with ``--report_peak_memory_footprint=true`` (its polling thread shares the
CPU with the model); energy is a window of inferences lasting ``energy_window_s`` between two
readings of the phone's rails or inside its fuel gauge sampler, then an idle window as long
(:mod:`device_agents.phone_energy`).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from device_agents import android_text as text
from device_agents import phone_energy as energy
from device_agents.adb import Adb, AdbPhone, ShellResult
from device_agents.benchmark_output import (
    BenchmarkOutput,
    BenchmarkOutputError,
    RunStatistics,
    parse_benchmark_output,
)
from device_agents.errors import MeasurementError
from device_agents.metrics import DeviceMetric, EnergyWindow, MetricReadings
from device_agents.profiling import Conditions, Measured
from device_agents.quality import Evidence, Gate
from device_agents.runners import Timing
from device_agents.worker import WorkerStats, run_worker
from latency_api import HwlatClient
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.enums import Delegate, DeviceKind, Precision, Runtime
from models import LayerKey, SearchSpace
from models.export import export_keys, export_layer

log = logging.getLogger(__name__)

REMOTE_DIR: Final = "/data/local/tmp"
# benchmark_model stops each phase after max_secs, so two phases plus loading bound a run.
_RUN_SLACK_S: Final = 60.0
_OUTPUT_TAIL_LINES: Final = 15
# Exporting converts in-process and redirects the process's stdout and stderr while it does;
# phones served from threads of one process must take turns.
_EXPORT_LOCK: Final = threading.Lock()


@dataclass(frozen=True, slots=True)
class ThermalLimits:
    """When a phone is too hot to measure, and how long to wait for it to cool."""

    max_cpu_c: float = 50.0
    max_battery_c: float = 40.0
    poll_s: float = 15.0
    max_wait_s: float = 900.0
    cpu_zones: str = text.DEFAULT_CPU_ZONES

    def __post_init__(self) -> None:
        if self.poll_s <= 0 or self.max_wait_s < 0:
            raise ValueError("poll_s must be positive and max_wait_s not negative")

    def too_hot(self, reading: text.ThermalReading) -> bool:
        cpu = reading.cpu_c(self.cpu_zones)
        battery = reading.battery_c
        return (cpu is not None and cpu > self.max_cpu_c) or (
            battery is not None and battery > self.max_battery_c
        )


@dataclass
class AndroidBackend:
    """One phone, by adb serial, running the user's ``benchmark_model`` binary."""

    serial: str
    benchmark_binary: Path
    adb: Adb = field(default_factory=Adb)
    name: str | None = None
    delegate: Delegate = Delegate.xnnpack
    num_threads: int = 1
    # None: the phone's fastest cores, as many clusters as the threads need.
    cpu_affinity: frozenset[int] | None = None
    # None: a digest of the binary, since figures do not transfer across builds.
    runtime_version: str | None = None
    thermal: ThermalLimits = field(default_factory=ThermalLimits)
    remote_dir: str = REMOTE_DIR
    extra_flags: tuple[str, ...] = ()
    command_timeout_s: float = 30.0
    push_timeout_s: float = 300.0
    # None: derived from the run's max_secs.
    run_timeout_s: float | None = None
    cache_dir: Path | None = None
    sleep: Callable[[float], None] = time.sleep
    # Energy: how long the window of inferences lasts (an idle window as long follows); the
    # fuel gauge's sampling period on the phone; whether to measure on a charger anyway.
    energy_window_s: float = 2.0
    gauge_period_s: float = 0.05
    allow_charging: bool = False
    # Peak memory: benchmark_model's polling interval (the tool's default is 50 ms).
    memory_check_interval_ms: int = 10
    _phone: AdbPhone = field(init=False, repr=False)
    _props: dict[str, str] | None = field(default=None, init=False, repr=False)
    _cores: frozenset[int] | None = field(default=None, init=False, repr=False)
    _binary_digest: str | None = field(default=None, init=False, repr=False)
    _binary_pushed: bool = field(default=False, init=False, repr=False)
    _pushed: set[str] = field(default_factory=set, init=False, repr=False)
    _digests: dict[tuple[str, int, int], str] = field(default_factory=dict, init=False, repr=False)
    # The rails, once probed: how to read them, or why they cannot be read.
    _rails: energy.RailsAccess | str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.delegate = Delegate(self.delegate)
        if self.num_threads < 1:
            raise ValueError(f"num_threads={self.num_threads}; need at least 1")
        if self.energy_window_s <= 0 or self.gauge_period_s <= 0:
            raise ValueError(
                f"energy_window_s={self.energy_window_s} and gauge_period_s="
                f"{self.gauge_period_s}: both must be positive"
            )
        if self.memory_check_interval_ms < 1:
            raise ValueError(f"memory_check_interval_ms={self.memory_check_interval_ms}; need >= 1")
        if not self.benchmark_binary.is_file():
            raise FileNotFoundError(
                f"benchmark_model binary {self.benchmark_binary} not found; see the README "
                "for where to get it"
            )
        self._phone = self.adb.phone(self.serial)

    # -- identity ---------------------------------------------------------------------------

    @property
    def binary_sha256(self) -> str:
        if self._binary_digest is None:
            self._binary_digest = _sha256(self.benchmark_binary)
        return self._binary_digest

    @property
    def version(self) -> str:
        return self.runtime_version or f"sha256:{self.binary_sha256[:16]}"

    @property
    def tool_version(self) -> str:
        return f"benchmark_model {self.version}"

    def properties(self) -> dict[str, str]:
        if self._props is None:
            self._props = self._phone.getprop(self.command_timeout_s)
        return self._props

    def cores(self) -> frozenset[int]:
        """The CPUs benchmark_model is pinned to."""
        if self.cpu_affinity is not None:
            return self.cpu_affinity
        if self._cores is None:
            max_khz = text.cpu_khz(
                self._sysfs(f"{text.CPU_GLOB}/cpuinfo_max_freq"), "cpuinfo_max_freq"
            )
            if not max_khz:
                raise MeasurementError(
                    f"{self.serial}: cannot read cpuinfo_max_freq to find the big cores; "
                    "give the CPUs explicitly"
                )
            self._cores = text.fastest_cores(max_khz, self.num_threads)
        return self._cores

    def describe(self) -> DeviceIn:
        props = self.properties()
        cores = self.cores()
        governors = text.cpu_values(
            self._sysfs(f"{text.CPU_GLOB}/scaling_governor"), "scaling_governor"
        )
        model = props.get("ro.product.model", "")
        return DeviceIn(
            name=(self.name or f"{model or 'android'} {self.serial}")[:200],
            kind=DeviceKind.android,
            model=model[:200],
            soc=_first(props, "ro.soc.model", "ro.board.platform", "ro.hardware")[:200],
            abi=props.get("ro.product.cpu.abi", "")[:64],
            os_version=props.get("ro.build.version.release", "")[:200],
            runtime=Runtime.benchmark_model,
            runtime_version=self.version[:64],
            delegate=self.delegate,
            threads=self.num_threads,
            precision=Precision.FP32,
            affinity_mask=text.mask_hex(cores),
            governor=text.summarize({c: g for c, g in governors.items() if c in cores})[:64],
            extra={
                "serial": self.serial,
                "manufacturer": props.get("ro.product.manufacturer", ""),
                "sdk": props.get("ro.build.version.sdk", ""),
                "fingerprint": props.get("ro.build.fingerprint", ""),
                "benchmark_model_sha256": self.binary_sha256,
            },
        )

    # -- measuring --------------------------------------------------------------------------

    def measure_layer(self, key: LayerKey, timing: Timing) -> Measured:
        started = time.monotonic()
        model = self._model_file(key)
        return self.measure_file(model, timing, export_s=time.monotonic() - started)

    def measure_network(self, space: SearchSpace, arch: Sequence[int], timing: Timing) -> Measured:
        started = time.monotonic()
        model = self._model_file(space.network(arch))
        return self.measure_file(model, timing, export_s=time.monotonic() - started)

    def _model_file(self, model: LayerKey | Sequence[LayerKey]) -> Path:
        """The cached .tflite of a layer (a key) or a network (its keys), exported once across
        the phones this process serves (_EXPORT_LOCK)."""
        with _EXPORT_LOCK:
            if isinstance(model, LayerKey):
                return export_layer(model, "tflite", cache_dir=self.cache_dir)
            return export_keys(model, "tflite", cache_dir=self.cache_dir)

    def measure_metrics(
        self, model: LayerKey | Sequence[LayerKey], metrics: frozenset[DeviceMetric], timing: Timing
    ) -> MetricReadings:
        """Peak memory and energy of one model, each in runs of its own (see the module doc).

        A metric this phone cannot give is stored as null with the reason; a phone on a
        charger is refused (MeasurementError) unless ``allow_charging``."""
        path = self._model_file(model)
        readings = MetricReadings()
        if DeviceMetric.memory in metrics:
            peak_bytes, method = self._peak_memory(path, timing)
            readings = replace(readings, peak_memory_bytes=peak_bytes, memory_method=method)
        if DeviceMetric.energy in metrics:
            energy_mj, method, detail = self._energy(path, timing)
            readings = replace(
                readings, energy_mj=energy_mj, energy_method=method, energy_detail=detail
            )
        return readings

    def check_metrics(self, metrics: frozenset[DeviceMetric]) -> None:
        if DeviceMetric.energy in metrics:
            self._charging()

    def _charging(self) -> list[str]:
        """Why the phone counts as charging ([] if not); refused unless ``allow_charging``."""
        charging = energy.charging_reasons(self._sysfs(*energy.CHARGER_FILES))
        if charging and not self.allow_charging:
            raise MeasurementError(f"{self.serial}: {', '.join(charging)}: {energy.CHARGING_HELP}")
        return charging

    def _peak_memory(self, model: Path, timing: Timing) -> tuple[int | None, str]:
        """A run with the tool's memory polling: its peak (else its footprint delta), bytes."""
        binary, graph = self._ensure_binary(), self._ensure_model(model)
        self.wait_until_cool()
        flags = (
            "--report_peak_memory_footprint=true",
            f"--memory_footprint_check_interval_ms={self.memory_check_interval_ms}",
        )
        command = self.benchmark_command(binary, graph, timing, flags)
        parsed, result = self._run(command, graph, timing, tolerated=flags)
        try:
            peak_bytes, method = parsed.peak_memory()
        except BenchmarkOutputError as error:
            return None, f"unavailable: {error}"
        if text.unconsumed_flags(result.text):
            # An older build: it ran, without polling; its delta line is what there is.
            method += " (this build has no --report_peak_memory_footprint)"
        if peak_bytes == 0:
            # ru_maxrss only grows: no growth means an earlier peak hid the model's own.
            return None, f"unavailable: benchmark_model reported 0 MB ({method})"
        return peak_bytes, method

    def _energy(self, model: Path, timing: Timing) -> tuple[float, str, dict[str, Any]]:
        """Energy per inference (mJ), how it was measured, and the window's evidence."""
        charging = self._charging()  # again: a cable may have gone in since the job began
        binary, graph = self._ensure_binary(), self._ensure_model(model)
        self.wait_until_cool()
        # One timed run lasting the window (warm-up runs included: they draw energy too).
        window = timing.model_copy(update={"num_runs": 1, "min_secs": self.energy_window_s})
        command = self.benchmark_command(binary, graph, window)
        rails = self._rails_access()
        if isinstance(rails, energy.RailsAccess):
            measured = self._rails_window(rails, command, graph, window)
            method = energy.RAILS_METHOD + (", read via su" if rails.via_su else "")
        else:
            measured = self._gauge_window(command, graph, window, rails, bool(charging))
            method = f"{energy.GAUGE_METHOD}; no rails: {rails}"
        detail: dict[str, Any] = {**measured.evidence(), "charging": bool(charging)}
        if charging:
            detail["charging_reasons"] = charging
        return measured.energy_per_inference_mj(), method, detail

    def _rails_access(self) -> energy.RailsAccess | str:
        """How to read the rails (probed once per phone), or why they cannot be read."""
        if self._rails is None:
            access = energy.RailsAccess(
                lambda c: self._phone.shell(c, self.command_timeout_s, check=False)
            )
            try:
                access.probe()
                self._rails = access
            except energy.NoRails as reason:
                log.info("%s: no rails, the fuel gauge instead: %s", self.serial, reason)
                self._rails = str(reason)
        return self._rails

    def _rails_window(
        self, rails: energy.RailsAccess, command: str, graph: str, timing: Timing
    ) -> EnergyWindow:
        before = rails.read()
        parsed, _ = self._run(command, graph, timing)
        active_j, active_s = energy.rails_delta(before, rails.read())
        idle_before = rails.read()
        self._phone.shell(f"sleep {active_s:.3f}", active_s + self.command_timeout_s)
        idle_j, idle_s = energy.rails_delta(idle_before, rails.read())
        return EnergyWindow(
            active_j,
            active_s,
            parsed.inferences,
            idle_j,
            idle_s,
            detail={
                "source": "rails",
                "read": "su -c" if rails.via_su else "adb shell",
                "rails": list(rails.rails),
            },
        )

    def _gauge_window(
        self, command: str, graph: str, timing: Timing, no_rails: str, charging: bool
    ) -> EnergyWindow:
        sampled = energy.sampler_command(command, self.gauge_period_s)
        parsed, result = self._run(sampled, graph, timing)
        active = energy.parse_gauge_samples(result.stdout)
        if len(active) < 2:
            raise MeasurementError(
                f"{self.serial}: {len(active)} fuel gauge samples while the model ran; the "
                f"output ends:\n{_tail(result.text)}"
            )
        span_s = active[-1].uptime_s - active[0].uptime_s
        idle_run = self._phone.shell(
            energy.sampler_command(f"sleep {span_s:.3f}", self.gauge_period_s),
            span_s + self.command_timeout_s,
            check=False,
        )
        idle = energy.parse_gauge_samples(idle_run.stdout)
        if len(idle) < 2:
            raise MeasurementError(
                f"{self.serial}: {len(idle)} fuel gauge samples in the idle window: "
                f"{_tail(idle_run.text)}"
            )
        # The phone's charging state, not whether charging is allowed: a phone allowed to
        # charge that is not charging still shows its driver's sign convention at idle.
        units = energy.GaugeUnits.infer(idle, charging)
        active_j, active_s = units.energy(active)
        idle_j, idle_s = units.energy(idle)
        return EnergyWindow(
            active_j,
            active_s,
            parsed.inferences,
            idle_j,
            idle_s,
            detail={
                "source": "fuel gauge",
                "gauge_hz": round(energy.sample_rate_hz(active), 1),
                "samples": len(active),
                "units": units.note,
                "no_rails": no_rails,
            },
        )

    def measure_file(self, model: Path, timing: Timing, export_s: float = 0.0) -> Measured:
        """Time one .tflite file on the phone."""
        binary = self._ensure_binary()
        graph = self._ensure_model(model)
        before = self.wait_until_cool()
        command = self.benchmark_command(binary, graph, timing)
        started = time.monotonic()
        parsed, _ = self._run(command, graph, timing)
        measure_s = time.monotonic() - started
        after, frequencies = self._conditions()
        return Measured(
            statistics=parsed.statistics(),
            conditions=Conditions(
                temp_before_c=self._temperature(before),
                temp_after_c=self._temperature(after),
                frequencies_khz=frequencies,
            ),
            export_s=export_s,
            measure_s=measure_s,
            evidence=Evidence(tail_ratio=_tail_ratio(parsed.inference)),
        )

    def _run(
        self, command: str, graph: str, timing: Timing, tolerated: Sequence[str] = ()
    ) -> tuple[BenchmarkOutput, ShellResult]:
        """Run a benchmark command line and read its output; a run that failed, ignored a flag
        (other than ``tolerated`` ones) or printed no usable statistics raises."""
        timeout = self.run_timeout_s or 2 * timing.max_secs + _RUN_SLACK_S
        result = self._phone.shell(command, timeout, check=False)
        output = result.text
        problem: str | None = None
        if result.returncode != 0:
            problem = f"benchmark_model exited with {result.returncode}"
        elif ignored := [f for f in text.unconsumed_flags(output) if f not in tolerated]:
            # A run that silently ignored a setting measured something else than asked.
            problem = f"this benchmark_model build ignores {' '.join(ignored)}"
        else:
            try:
                parsed = parse_benchmark_output(output)
                parsed.statistics()
            except BenchmarkOutputError as error:
                problem = f"unusable benchmark_model output: {error}"
        if problem is not None:
            # The phone may have lost the files (storage wiped, another tool cleaning up):
            # push them again on the retry rather than fail the same way forever.
            self._pushed.discard(graph)
            self._binary_pushed = False
            raise MeasurementError(f"{self.serial}: {problem}; the output ends:\n{_tail(output)}")
        return parsed, result

    def benchmark_command(
        self, binary: str, graph: str, timing: Timing, extra: Sequence[str] = ()
    ) -> str:
        """The shell command that times ``graph``: this phone's settings, the job's timing."""
        flags = [
            f"--graph={graph}",
            f"--num_threads={self.num_threads}",
            f"--warmup_runs={timing.warmup_runs}",
            f"--num_runs={timing.num_runs}",
            f"--min_secs={timing.min_secs:g}",
            f"--max_secs={timing.max_secs:g}",
            f"--use_xnnpack={str(self.delegate is not Delegate.cpu).lower()}",
        ]
        if self.delegate is Delegate.gpu:
            flags.append("--use_gpu=true")
        elif self.delegate is Delegate.nnapi:
            flags.append("--use_nnapi=true")
        flags += [*self.extra_flags, *extra]
        return shlex.join(["taskset", text.mask_hex(self.cores()), binary, *flags])

    def wait_until_cool(self) -> text.ThermalReading:
        """Poll the temperatures until the phone is cool enough; raise if it never is."""
        waited = 0.0
        while True:
            reading = self.read_thermal()
            if not self.thermal.too_hot(reading):
                return reading
            if waited >= self.thermal.max_wait_s:
                raise MeasurementError(
                    f"{self.serial}: still too hot after waiting {waited:g}s "
                    f"({reading.describe(self.thermal.cpu_zones)}; limits CPU "
                    f"{self.thermal.max_cpu_c:g} °C, battery {self.thermal.max_battery_c:g} °C)"
                )
            log.info(
                "%s: too hot (%s); waiting %gs",
                self.serial,
                reading.describe(self.thermal.cpu_zones),
                self.thermal.poll_s,
            )
            self.sleep(self.thermal.poll_s)
            waited += self.thermal.poll_s

    def read_thermal(self) -> text.ThermalReading:
        zones = self._sysfs(f"{text.THERMAL_GLOB}/type", f"{text.THERMAL_GLOB}/temp")
        battery = self._phone.shell("dumpsys battery", self.command_timeout_s, check=False)
        return text.thermal_reading(zones, text.battery_celsius(battery.stdout))

    def cleanup(self) -> None:
        """Remove the models this backend pushed (the binary stays for the next run)."""
        if self._pushed:
            paths = " ".join(shlex.quote(p) for p in sorted(self._pushed))
            self._phone.shell(f"rm -f {paths}", self.command_timeout_s)
            self._pushed.clear()

    # -- plumbing ---------------------------------------------------------------------------

    def _ensure_binary(self) -> str:
        remote = f"{self.remote_dir}/benchmark_model"
        if not self._binary_pushed:
            self._phone.push(self.benchmark_binary, remote, self.push_timeout_s)
            self._phone.shell(f"chmod 755 {shlex.quote(remote)}", self.command_timeout_s)
            self._binary_pushed = True
        return remote

    def _ensure_model(self, model: Path) -> str:
        stat = model.stat()
        identity = (str(model), stat.st_size, stat.st_mtime_ns)
        digest = self._digests.get(identity)
        if digest is None:
            digest = self._digests[identity] = _sha256(model)
        remote = f"{self.remote_dir}/hwlat-{digest[:24]}.tflite"
        if remote not in self._pushed:
            self._phone.push(model, remote, self.push_timeout_s)
            self._pushed.add(remote)
        return remote

    def _conditions(self) -> tuple[text.ThermalReading, dict[str, int] | None]:
        values = self._sysfs(
            f"{text.THERMAL_GLOB}/type",
            f"{text.THERMAL_GLOB}/temp",
            f"{text.CPU_GLOB}/scaling_cur_freq",
        )
        battery = self._phone.shell("dumpsys battery", self.command_timeout_s, check=False)
        reading = text.thermal_reading(values, text.battery_celsius(battery.stdout))
        khz = text.cpu_khz(values, "scaling_cur_freq")
        return reading, ({f"cpu{c}": f for c, f in khz.items()} or None)

    def _sysfs(self, *patterns: str) -> dict[str, str]:
        # grep exits nonzero when one file is unreadable; the readable ones still count.
        result = self._phone.shell(
            f"grep -Hs . {' '.join(patterns)}", self.command_timeout_s, check=False
        )
        return text.parse_grep_values(result.stdout)

    def _temperature(self, reading: text.ThermalReading) -> float | None:
        cpu = reading.cpu_c(self.thermal.cpu_zones)
        return cpu if cpu is not None else reading.battery_c


# -- several phones -----------------------------------------------------------------------------


def discover_phones(adb: Adb) -> list[str]:
    """Serials of the phones ready for commands; others (unauthorized, offline) are logged."""
    ready = []
    for device in adb.list_devices():
        if device.ready:
            ready.append(device.serial)
        else:
            log.warning("%s is %s; skipping it", device.serial, device.state)
    return ready


@dataclass
class PhoneOutcome:
    """How serving one phone ended: its worker's stats, or the error that stopped it."""

    serial: str
    device_id: int | None = None
    stats: WorkerStats | None = None
    error: BaseException | None = None


class _Stopped(Exception):
    """Raised out of an idle worker's sleep when serving is asked to stop."""


def serve_phones(
    client: HwlatClient,
    backends: Sequence[AndroidBackend],
    defaults: Timing,
    *,
    gate: Gate | None = None,
    reference: bool = True,
    lease_s: float = 300.0,
    poll_s: float = 5.0,
    stop_when_idle: bool = False,
    max_jobs: int | None = None,
    stop: threading.Event | None = None,
) -> list[PhoneOutcome]:
    """Serve jobs on every phone at once, one worker thread per phone.

    A phone that is lost (unplugged, hung) ends its own worker; its job goes back to the queue
    and the other phones carry on. Setting ``stop`` ends idle workers; busy ones finish their
    job first.
    """
    stop = stop or threading.Event()
    outcomes = [PhoneOutcome(b.serial) for b in backends]

    def serve(backend: AndroidBackend, outcome: PhoneOutcome) -> None:
        outcome.device_id = client.register_device(backend.describe()).id
        log.info("%s: serving jobs as device %s", backend.serial, outcome.device_id)

        def idle(seconds: float) -> None:
            if stop.wait(seconds):
                raise _Stopped

        try:
            outcome.stats = run_worker(
                client,
                backend,
                outcome.device_id,
                f"android:{backend.serial}@{platform.node()}",
                defaults,
                gate=gate,
                reference=reference,
                lease_s=lease_s,
                poll_s=poll_s,
                stop_when_idle=stop_when_idle,
                max_jobs=max_jobs,
                sleep=idle,
            )
        except _Stopped:
            log.info("%s: stopped", backend.serial)

    with ThreadPoolExecutor(max_workers=max(1, len(backends)), thread_name_prefix="phone") as pool:
        futures = [pool.submit(serve, b, o) for b, o in zip(backends, outcomes, strict=True)]
        try:
            for future, outcome in zip(futures, outcomes, strict=True):
                outcome.error = future.exception()
                if outcome.error is not None:
                    log.error("%s: stopped by %s", outcome.serial, outcome.error)
        except KeyboardInterrupt:
            stop.set()
            raise
    return outcomes


def _tail_ratio(runs: RunStatistics | None) -> float | None:
    """Median over the 5th percentile, where the build prints both (the phone's counterpart of
    the host's median over p10); None for builds without percentiles."""
    if runs is None or runs.median_us is None or not runs.p5_us:
        return None
    return runs.median_us / runs.p5_us


def _first(props: dict[str, str], *names: str) -> str:
    return next((props[n] for n in names if props.get(n)), "")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tail(output: str) -> str:
    lines = output.strip().splitlines()
    return "\n".join(lines[-_OUTPUT_TAIL_LINES:]) if lines else "(no output)"
