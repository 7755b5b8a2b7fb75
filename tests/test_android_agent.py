"""The Android agent against emulated phones: what it registers, what it runs, what it stores."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from device_agents import android_text as text
from device_agents.adb import Adb
from device_agents.android import discover_phones
from device_agents.errors import MeasurementError
from device_agents.quality import Gate
from device_agents.runners import Timing
from device_agents.worker import run_worker
from latency_api import HwlatClient
from latency_api.schemas.enums import Delegate
from latency_api.schemas.jobs import JobIn, JobTiming, ProfileLayers, ProfileNetworks
from models import get_space, parse
from models.export import export_keys, export_layer
from tests.android_helpers import (
    FAST,
    KEYS,
    NO_WARMUP_FLOOR,
    android,
    layer_job,
    printed_statistics,
)
from tests.emulated_phone.state import MakePhones, PhoneDir
from tests.fixtures.services import Service, list_layers

pytestmark = pytest.mark.heavy

# -- readers of phone output ----------------------------------------------------------------


def test_thermal_reading_prefers_cpu_zones_and_drops_implausible_ones() -> None:
    values = text.parse_grep_values(
        "/sys/class/thermal/thermal_zone0/type:cpu-1-0-usr\n"
        "/sys/class/thermal/thermal_zone0/temp:47300\n"
        "/sys/class/thermal/thermal_zone1/type:skin-therm\n"
        "/sys/class/thermal/thermal_zone1/temp:52000\n"
        "/sys/class/thermal/thermal_zone2/type:pm8350b-ibat-lvl0\n"
        "/sys/class/thermal/thermal_zone2/temp:0\n"
        "/sys/class/thermal/thermal_zone3/type:mtktscpu\n"
        "/sys/class/thermal/thermal_zone3/temp:-274000\n"
        "/sys/class/thermal/thermal_zone4/type:tsens_tz_sensor4\n"
        "/sys/class/thermal/thermal_zone4/temp:455\n"
    )
    reading = text.thermal_reading(values, text.battery_celsius("  temperature: 312\n"))
    assert reading.battery_c == 31.2
    # skin-therm is hotter but is not the CPU; tenths (455) and millidegrees both convert.
    assert reading.cpu_c() == 47.3
    assert set(reading.zones) == {"thermal_zone0", "thermal_zone1", "thermal_zone4"}
    assert reading.cpu_c(r"^skin") == 52.0
    assert text.ThermalReading({"z": ("battery", 30.0)}).cpu_c() == 30.0  # no CPU zone: all
    assert text.ThermalReading().cpu_c() is None


def test_cpu_readers_masks_and_big_cores() -> None:
    values = text.parse_grep_values(
        "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq:1803000\n"
        "/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq:1803000\n"
        "/sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq:2400000\n"
        "/sys/devices/system/cpu/cpu5/cpufreq/cpuinfo_max_freq:2400000\n"
        "/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq:2850000\n"
        "/sys/devices/system/cpu/cpu7/cpufreq/scaling_governor:performance\n"
    )
    max_khz = text.cpu_khz(values, "cpuinfo_max_freq")
    assert text.fastest_cores(max_khz, 1) == {7}
    assert text.fastest_cores(max_khz, 2) == {4, 5, 7}
    assert text.fastest_cores(max_khz, 8) == {0, 1, 4, 5, 7}
    assert text.mask_hex({4, 5, 6, 7}) == "f0"
    assert text.summarize({0: "schedutil", 1: "schedutil", 4: "performance", 5: "performance"}) == (
        "4-5:performance,0-1:schedutil"
    )
    assert text.summarize({7: "performance"}) == "performance"
    assert text.unconsumed_flags("WARNING: Unconsumed cmdline flags: --use_xnpack=true --x\n") == [
        "--use_xnpack=true",
        "--x",
    ]


# -- describing and commanding a phone ------------------------------------------------------


def test_describe_reads_the_phone(make_phones: MakePhones, benchmark_binary: Path) -> None:
    pixel = make_phones(1)[0]
    (galaxy,) = make_phones(1, props={"ro.product.model": "Galaxy A52", "ro.soc.model": ""})
    assert discover_phones(Adb()) == [pixel.serial, galaxy.serial]

    spec = android(pixel, benchmark_binary).describe()
    assert spec.kind == "android"
    assert spec.runtime == "benchmark_model"
    assert (spec.model, spec.soc, spec.abi, spec.os_version) == (
        "Pixel 7",
        "GS201",
        "arm64-v8a",
        "14",
    )
    assert spec.affinity_mask == "80"  # cpu7, the phone's one prime core
    assert spec.governor == "schedutil"
    assert spec.delegate == "xnnpack"
    assert spec.threads == 1
    assert spec.runtime_version.startswith("sha256:")
    assert spec.extra["serial"] == pixel.serial

    # No ro.soc.model (before Android 12): the board platform names the SoC.
    assert android(galaxy, benchmark_binary).describe().soc == "gs201"

    # Another binary is another runtime; an explicit version wins; threads widen the mask.
    other = benchmark_binary.with_name("benchmark_model_2")
    other.write_bytes(b"another build")
    assert android(pixel, other).describe().runtime_version != spec.runtime_version
    named = android(pixel, benchmark_binary, runtime_version="2.16.1", num_threads=2)
    assert named.describe().runtime_version == "2.16.1"
    assert named.describe().affinity_mask == "f0"
    pixel.update(
        cpus=[
            *pixel.control()["cpus"][:7],
            {**pixel.control()["cpus"][7], "governor": "performance"},
        ]
    )
    assert android(pixel, benchmark_binary).describe().governor == "performance"


def test_benchmark_command_carries_every_setting(phone: PhoneDir, benchmark_binary: Path) -> None:
    backend = android(phone, benchmark_binary, cpu_affinity=frozenset({4, 5}), extra_flags=())
    command = backend.benchmark_command("/d/bm", "/d/m.tflite", FAST)
    assert command == (
        "taskset 30 /d/bm --graph=/d/m.tflite --num_threads=1 --warmup_runs=2 --num_runs=5 "
        "--min_secs=0 --max_secs=150 --use_xnnpack=true"
    )
    cpu = android(phone, benchmark_binary, delegate=Delegate.cpu)
    assert "--use_xnnpack=false" in cpu.benchmark_command("/b", "/g", FAST)
    gpu = android(phone, benchmark_binary, delegate="gpu")
    assert "--use_gpu=true" in gpu.benchmark_command("/b", "/g", FAST)
    assert "--use_xnnpack=true" in gpu.benchmark_command("/b", "/g", FAST)


def test_a_layer_is_pushed_once_and_measured(phone: PhoneDir, benchmark_binary: Path) -> None:
    backend = android(phone, benchmark_binary)
    first = backend.measure_layer(parse(KEYS[0]), FAST)
    second = backend.measure_layer(parse(KEYS[0]), FAST)
    runs = phone.benchmark_log()
    assert len(runs) == 2
    assert runs[0]["graph"] == runs[1]["graph"]
    assert runs[0]["mask"] == "80"
    pushed = sorted(p.name for p in phone.host_path("/data/local/tmp").iterdir())
    assert pushed == ["benchmark_model", runs[0]["graph"].rsplit("/", 1)[1]]
    assert phone.host_path(runs[0]["graph"]).read_bytes() == export_layer(KEYS[0]).read_bytes()
    for measured, run in zip((first, second), runs, strict=True):
        printed = printed_statistics(run)
        assert measured.statistics.count == printed["count"] == 5
        assert measured.statistics.median_ms == printed["median"] / 1000
        assert measured.conditions.frequencies_khz is not None
        assert measured.conditions.frequencies_khz["cpu7"] == 2850000
    backend.cleanup()
    assert [p.name for p in phone.host_path("/data/local/tmp").iterdir()] == ["benchmark_model"]
    # Each run heats the emulated phone by 0.2 °C; the agent saw it.
    assert first.conditions.temp_before_c == pytest.approx(32.0)
    assert first.conditions.temp_after_c == pytest.approx(32.2)


def test_files_lost_on_the_phone_fail_one_run_then_are_pushed_again(
    phone: PhoneDir, benchmark_binary: Path
) -> None:
    backend = android(phone, benchmark_binary)
    backend.measure_layer(parse(KEYS[0]), FAST)
    graph = phone.benchmark_log()[0]["graph"]
    phone.host_path(graph).unlink()
    with pytest.raises(MeasurementError, match="Could not open"):
        backend.measure_layer(parse(KEYS[0]), FAST)
    backend.measure_layer(parse(KEYS[0]), FAST)
    assert [r["exit_code"] for r in phone.benchmark_log()] == [0, 1, 0]


def test_a_flag_the_build_ignores_fails_the_run(phone: PhoneDir, benchmark_binary: Path) -> None:
    backend = android(phone, benchmark_binary, extra_flags=(*NO_WARMUP_FLOOR, "--use_xnpack=false"))
    with pytest.raises(MeasurementError, match="ignores --use_xnpack=false"):
        backend.measure_layer(parse(KEYS[0]), FAST)


def test_older_builds_without_percentiles_store_the_average_and_say_so(
    service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    phone.update(output_form="legacy")
    backend = android(phone, benchmark_binary)
    measured = backend.measure_layer(parse(KEYS[1]), FAST)
    printed = printed_statistics(phone.benchmark_log()[0])
    assert "median" not in printed
    assert measured.statistics.median_is_average
    assert measured.statistics.median_ms == pytest.approx(printed["avg"] / 1000)
    # Through a job, the flag reaches the store and the layer's current value.
    device_id = service_client.register_device(backend.describe()).id
    service_client.create_job(layer_job(device_id, KEYS[1:2]))
    run_worker(
        service_client,
        backend,
        device_id,
        "android:old",
        Timing(),
        reference=False,
        stop_when_idle=True,
    )
    (row,) = service_client.iter_layer_measurements(device_id=device_id)
    assert row.median_is_average
    (current,) = service_client.current_layers(device_id)
    assert current.averages_used == 1


# -- through the service ----------------------------------------------------------------------


def test_a_job_end_to_end_stores_what_the_phone_printed(
    service: Service, service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    backend = android(phone, benchmark_binary)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(layer_job(device_id, KEYS[:3]))
    stats = run_worker(
        service_client,
        backend,
        device_id,
        f"android:{phone.serial}",
        Timing(),
        reference=False,
        stop_when_idle=True,
    )
    assert stats.done == [job.id]
    assert stats.stored == 3
    assert service_client.get_job(job.id).status == "done"

    with service.http() as http:
        rows = {row["layer_key"]: row for row in list_layers(http, device_id)}
    runs = phone.benchmark_log()
    assert sorted(rows) == sorted(KEYS[:3])
    assert len(runs) == 3
    for key in KEYS[:3]:
        (run,) = [
            r
            for r in runs
            if phone.host_path(r["graph"]).read_bytes() == export_layer(key).read_bytes()
        ]
        assert "--warmup_runs=2" in run["args"]
        assert "--num_runs=5" in run["args"]
        printed, row = printed_statistics(run), rows[key]
        assert row["count"] == printed["count"] == 5
        for field, name in (("median_ms", "median"), ("min_ms", "min"), ("max_ms", "max")):
            assert round(row[field] * 1000) == printed[name], (key, field)
        assert row["mean_ms"] == pytest.approx(printed["avg"] / 1000, rel=1e-5)
        assert row["temp_before_c"] is not None
        assert row["temp_after_c"] > row["temp_before_c"]
        assert row["frequencies_khz"]["cpu7"] == 2850000
        assert row["tool_version"] == backend.tool_version


def test_a_network_job_times_the_whole_network(
    service: Service, service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    backend = android(phone, benchmark_binary)
    device_id = service_client.register_device(backend.describe()).id
    arch = [1, 4, 2, 0]  # layer 1 skipped
    job = service_client.create_job(
        JobIn(
            device_id=device_id,
            payload=ProfileNetworks(space="tiny-64", architectures=[arch]),
            timing=JobTiming(warmup_runs=2, num_runs=5),
        )
    )
    stats = run_worker(
        service_client,
        backend,
        device_id,
        "android:n",
        Timing(),
        reference=False,
        stop_when_idle=True,
    )
    assert stats.done == [job.id]
    (run,) = phone.benchmark_log()
    network = export_keys(get_space("tiny-64").network(arch), "tflite")
    assert phone.host_path(run["graph"]).read_bytes() == network.read_bytes()
    (row,) = service_client.iter_network_measurements(device_id=device_id)
    assert row.architecture == arch
    assert row.space == "tiny-64"
    assert round(row.median_ms * 1000) == printed_statistics(run)["median"]


def test_a_burst_on_the_phone_is_rejected_measured_again_and_stored_as_such(
    service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    # The second of three passes runs at half speed (another app took the core for a while).
    phone.update(slow_runs={"runs": [1], "factor": 2.0})
    backend = android(phone, benchmark_binary)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(
        JobIn(
            device_id=device_id,
            payload=ProfileLayers(layer_keys=KEYS[1:2]),
            timing=JobTiming(warmup_runs=2, num_runs=50, repeats=3),
        )
    )
    stats = run_worker(
        service_client,
        backend,
        device_id,
        "android:burst",
        Timing(),
        # The emulated phone is this busy test machine: its passes of a layer this small
        # (tens of microseconds) differ by more than a real phone's would, so only the injected
        # burst is held against them here; the tail check is for phone-sized models.
        gate=Gate(tail_limit=None, repeat_limit=1.4),
        reference=False,
        stop_when_idle=True,
    )
    assert stats.done == [job.id]
    runs = phone.benchmark_log()
    assert len(runs) == 4  # three passes and one re-measurement
    rows = list(service_client.iter_layer_measurements(device_id=device_id))
    assert [(r.accepted, r.pass_index, r.attempt) for r in rows] == [
        (True, 0, 1),
        (False, 1, 1),
        (True, 2, 1),
        (True, 1, 2),  # pass 1 measured again
    ]
    slowed = rows[1]
    assert slowed.rejection is not None
    assert "median of its other repeats" in slowed.rejection
    # The stored rejected row is the slowed pass: above the gate's limit against the median of
    # the accepted ones (one pass alone wobbles by tens of percent on a layer this small).
    accepted = statistics.median(r.median_ms for r in rows if r.accepted)
    assert slowed.median_ms > 1.4 * accepted
    assert slowed.job_id == job.id
    assert all(r.quality and "tail_ratio" in r.quality for r in rows)
    assert service_client.get_job(job.id).result.remeasured == 1  # type: ignore[union-attr]
    (current,) = service_client.current_layers(device_id)
    assert current.n == 3  # the rejected attempt is evidence, not data
    # The current value is the median of the accepted attempts that are not outliers among
    # themselves (with three tiny, noisy passes one may be set aside too).
    used = [r.median_ms for r in rows if r.accepted and r.id not in current.outlier_ids]
    assert current.n_used == len(used) >= 2
    assert current.median_ms == pytest.approx(float(np.median(used)))
