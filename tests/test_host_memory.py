"""Peak memory (and energy, where a counter exists) of real models on this host: each peak
measured in a fresh process, and both through a real job."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from device_agents import rapl
from device_agents.host import HostBackend
from device_agents.memory import PeakMemory, measure_peak_memory
from device_agents.runners import RuntimeOptions, Timing
from device_agents.worker import run_worker
from latency_api import HwlatClient
from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.jobs import JobIn, JobTiming, ProfileLayers
from models import parse
from models.export import export_layer

pytestmark = pytest.mark.heavy

# Weights of 1.6 MB and activations of 40 kB; then weights of 23 kB and activations of 5 MB.
HEAVY_WEIGHTS = parse("conv_hw7_i320_o1280_k1_s1")
HEAVY_ACTIVATIONS = parse("mbconv_hw112_i16_o24_k3_e6_s2")
MB = 1 << 20


def peak(key: str, runtime: str, fmt: str, xnnpack: bool = True) -> PeakMemory:
    return measure_peak_memory(export_layer(key, fmt), runtime, RuntimeOptions(use_xnnpack=xnnpack))


@pytest.mark.parametrize(("runtime", "fmt"), [("litert", "tflite"), ("onnxruntime", "onnx")])
def test_the_peak_holds_the_weights_of_one_layer_and_the_activations_of_another(
    runtime: str, fmt: str
) -> None:
    weights = peak(str(HEAVY_WEIGHTS), runtime, fmt)
    assert weights.model_bytes > 1.5 * MB
    assert weights.peak_bytes >= weights.model_bytes
    activations = peak(str(HEAVY_ACTIVATIONS), runtime, fmt)
    assert activations.model_bytes < 0.1 * MB
    # Its expanded tensor alone is 112 x 112 x 96 floats (4.8 MB) before the stride-2 depthwise.
    expanded = HEAVY_ACTIVATIONS.hw**2 * HEAVY_ACTIVATIONS.mid * 4
    assert activations.peak_bytes >= 0.9 * expanded
    # The interpreter's own libraries are the baseline, not the model's.
    assert activations.baseline_bytes > 10 * MB
    assert "fresh process" in activations.method
    # Each measurement is a fresh process: a second one finds the same peak.
    again = peak(str(HEAVY_ACTIVATIONS), runtime, fmt)
    assert abs(again.peak_bytes - activations.peak_bytes) <= 0.05 * activations.peak_bytes


def test_xnnpack_adds_its_own_buffers_to_the_peak() -> None:
    with_xnnpack = peak(str(HEAVY_WEIGHTS), "litert", "tflite")
    builtin = peak(str(HEAVY_WEIGHTS), "litert", "tflite", xnnpack=False)
    assert with_xnnpack.peak_bytes > builtin.peak_bytes >= builtin.model_bytes


def test_a_file_that_is_no_model_is_refused_with_the_runtime_s_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(RuntimeError, match=r"peak memory of .*broken\.tflite failed"):
        measure_peak_memory(broken, "litert")
    with pytest.raises(FileNotFoundError, match="no model file"):
        measure_peak_memory(tmp_path / "missing.tflite", "litert")


# -- through a job ----------------------------------------------------------------------------


class FakeRapl:
    """A RAPL package zone whose counter follows the load this process really runs: idle
    watts over wall time plus watts per CPU-second over the process's CPU time, updated every
    millisecond or so, as the kernel's counter is (faithful where it matters: an inference
    window draws more than idle in proportion to the work done)."""

    IDLE_W, CPU_W = 2.0, 20.0

    def __init__(self, root: Path) -> None:
        self.zone = root / "intel-rapl:0"
        self.zone.mkdir(parents=True)
        (self.zone / "name").write_text("package-0\n")
        (self.zone / "max_energy_range_uj").write_text(f"{2**32}\n")
        self._start_wall, self._start_cpu = time.monotonic(), time.process_time()
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _write(self) -> None:
        joules = self.IDLE_W * (time.monotonic() - self._start_wall)
        joules += self.CPU_W * (time.process_time() - self._start_cpu)
        # Replaced whole, as sysfs gives a reader the whole value or the old one.
        staged = self.zone / "energy_uj.new"
        staged.write_text(f"{int(joules * 1e6) % 2**32}\n")
        staged.replace(self.zone / "energy_uj")

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self._write()

    def __enter__(self) -> FakeRapl:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


SMALL = "mbconv_hw14_i16_o16_k3_e1_s1"


def test_a_job_asking_for_memory_and_energy_stores_them_on_one_row_per_model(
    service_client: HwlatClient, tmp_path: Path
) -> None:
    backend = HostBackend(
        max_busy_fraction=None, use_probe=False, powercap_root=tmp_path / "powercap"
    )
    device_id = service_client.register_device(backend.describe()).id
    keys = [SMALL, str(HEAVY_ACTIVATIONS)]
    service_client.create_job(
        JobIn(
            device_id=device_id,
            payload=ProfileLayers(layer_keys=keys, metrics=["memory", "energy"]),
            timing=JobTiming(warmup_runs=1, num_runs=3, repeats=2),
        )
    )
    with FakeRapl(tmp_path / "powercap"):
        stats = run_worker(
            service_client,
            backend,
            device_id,
            "host:metrics",
            Timing(),
            reference=False,
            stop_when_idle=True,
        )
    assert stats.stored == 4  # two passes of two layers
    rows = list(service_client.iter_layer_measurements(device_id=device_id))
    carriers = [r for r in rows if r.peak_memory_bytes is not None]
    assert sorted(r.layer_key for r in carriers) == sorted(keys)
    assert all(r.energy_mj is None for r in rows if r.peak_memory_bytes is None)
    by_key = {r.layer_key: r for r in carriers}
    small, large = by_key[SMALL], by_key[str(HEAVY_ACTIVATIONS)]
    assert large.peak_memory_bytes > small.peak_memory_bytes  # type: ignore[operator]
    assert "fresh process" in str(large.memory_method)
    assert small.energy_method == rapl.METHOD
    assert small.energy_detail is not None
    assert small.energy_detail["zones"] == ["package-0"]
    # The large layer does about 600 times the MACs: it costs more energy per inference.
    assert 0 < small.energy_mj < large.energy_mj  # type: ignore[operator]
    assert large.energy_detail is not None
    assert large.energy_detail["active_w"] > large.energy_detail["idle_w"]


def test_a_host_without_an_energy_counter_says_so_and_still_stores_latency(
    tmp_path: Path,
) -> None:
    backend = HostBackend(
        max_busy_fraction=None, use_probe=False, powercap_root=tmp_path / "absent"
    )
    readings = backend.measure_metrics(parse(SMALL), frozenset({DeviceMetric.energy}), Timing())
    assert readings.energy_mj is None
    assert readings.energy_method is not None
    assert readings.energy_method.startswith("unavailable: this host exposes no energy counter")
    assert readings.peak_memory_bytes is None  # not asked for
