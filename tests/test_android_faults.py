"""The Android agent when phones misbehave: hot, unplugged mid-job, hung; and several at once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from device_agents.adb import AdbTimeout
from device_agents.android import ThermalLimits, serve_phones
from device_agents.errors import DeviceLost, MeasurementError
from device_agents.runners import Timing
from device_agents.worker import run_worker
from latency_api import HwlatClient
from latency_api.schemas.jobs import DeviceSelector, JobIn, JobTiming, ProfileLayers
from models import parse
from tests.android_helpers import FAST, KEYS, android, layer_job
from tests.emulated_phone.probes import processes_serving
from tests.emulated_phone.state import MakePhones, PhoneDir
from tests.fixtures.services import Service, list_layers

pytestmark = pytest.mark.heavy

LIMITS = ThermalLimits(max_cpu_c=45.0, max_battery_c=40.0, poll_s=10.0, max_wait_s=60.0)


def stored(service: Service, device_id: int) -> list[dict[str, Any]]:
    with service.http() as http:
        return list_layers(http, device_id)


def test_a_hot_phone_is_waited_for_then_measured(phone: PhoneDir, benchmark_binary: Path) -> None:
    phone.update(temperature_c=58.0)
    waits: list[tuple[float, int]] = []

    def sleep(seconds: float) -> None:
        # Time passes on the phone: it cools 5 °C per wait, and it was not run meanwhile.
        waits.append((seconds, len(phone.benchmark_log())))
        phone.update(temperature_c=phone.control()["temperature_c"] - 5.0)

    backend = android(phone, benchmark_binary, thermal=LIMITS, sleep=sleep)
    measured = backend.measure_layer(parse(KEYS[0]), FAST)
    # 58 -> 53 -> 48 -> 43 °C: three waits, the run only once the CPU was below 45 °C.
    assert waits == [(10.0, 0), (10.0, 0), (10.0, 0)]
    assert measured.conditions.temp_before_c == pytest.approx(43.0)
    assert len(phone.benchmark_log()) == 1


def test_a_hot_battery_alone_also_waits(phone: PhoneDir, benchmark_binary: Path) -> None:
    phone.update(temperature_c=40.0, battery_offset_c=3.0)  # CPU fine, battery at 43 °C
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        phone.update(battery_offset_c=-5.0)

    backend = android(phone, benchmark_binary, thermal=LIMITS, sleep=sleep)
    backend.measure_layer(parse(KEYS[0]), FAST)
    assert waits == [10.0]


def test_a_phone_that_never_cools_fails_the_job_instead_of_storing_a_number(
    service: Service, service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    phone.update(temperature_c=70.0)
    slept: list[float] = []
    backend = android(phone, benchmark_binary, thermal=LIMITS, sleep=slept.append)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(layer_job(device_id, KEYS[:2], max_attempts=2))
    stats = run_worker(
        service_client,
        backend,
        device_id,
        "android:hot",
        Timing(),
        stop_when_idle=True,
    )
    assert stats.failed == [job.id, job.id]
    assert stats.done == []
    final = service_client.get_job(job.id)
    assert final.status == "failed"
    assert final.attempts == 2
    assert "still too hot after waiting 60s" in final.error
    # Each attempt waited its full bound (6 polls of 10 s) and then gave up.
    assert slept == [10.0] * 12
    assert phone.benchmark_log() == []
    assert stored(service, device_id) == []


def test_an_unplugged_phone_returns_its_job_and_stores_nothing(
    service: Service, service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    phone.update(offline_after_runs=1)
    backend = android(phone, benchmark_binary)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(layer_job(device_id, KEYS[:3]))
    with pytest.raises(DeviceLost, match="not found"):
        run_worker(service_client, backend, device_id, "android:u", Timing(), stop_when_idle=True)
    back = service_client.get_job(job.id)
    assert back.status == "queued"
    assert back.attempts == 1
    assert back.error.startswith("device lost:")
    assert len(phone.benchmark_log()) == 1  # one layer ran before the phone went away
    assert stored(service, device_id) == []

    # Plugged back in, the same agent finishes the job: every layer once, nothing twice.
    phone.update(offline_after_runs=None)
    stats = run_worker(
        service_client, backend, device_id, "android:u", Timing(), stop_when_idle=True
    )
    assert stats.done == [job.id]
    assert sorted(r["layer_key"] for r in stored(service, device_id)) == sorted(KEYS[:3])


def test_a_hung_phone_times_out_returns_the_job_and_stores_nothing(
    service: Service,
    service_client: HwlatClient,
    phone: PhoneDir,
    benchmark_binary: Path,
    adb_home: Path,
) -> None:
    phone.update(hang_on="benchmark_model")
    backend = android(phone, benchmark_binary, run_timeout_s=2.0)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(layer_job(device_id, KEYS[:2]))
    started = time.monotonic()
    with pytest.raises(AdbTimeout, match="did not finish within 2s"):
        run_worker(service_client, backend, device_id, "android:h", Timing(), stop_when_idle=True)
    assert time.monotonic() - started < 15
    back = service_client.get_job(job.id)
    assert back.status == "queued"
    assert "not answering" in back.error
    assert stored(service, device_id) == []
    assert processes_serving(adb_home) == []  # the hung adb and its benchmark are gone


def test_two_phones_serve_jobs_in_parallel_each_job_once(
    service: Service, service_client: HwlatClient, make_phones: MakePhones, benchmark_binary: Path
) -> None:
    (pixel,) = make_phones(1)
    (galaxy,) = make_phones(
        1, props={"ro.product.model": "Galaxy S21", "ro.soc.model": "Exynos 2100"}
    )
    backends = [android(p, benchmark_binary) for p in (pixel, galaxy)]
    version = backends[0].version
    jobs = [
        service_client.create_job(
            JobIn(
                selector=DeviceSelector(kind="android", runtime_version=version),
                payload=ProfileLayers(layer_keys=[key]),
                timing=JobTiming(warmup_runs=2, num_runs=5),
            )
        ).id
        for key in KEYS
    ]
    outcomes = serve_phones(
        service_client, backends, Timing(), reference=False, stop_when_idle=True, poll_s=0.1
    )
    assert [o.error for o in outcomes] == [None, None]
    by_serial = {o.serial: o for o in outcomes}
    done = [j for o in outcomes for j in (o.stats.done if o.stats else [])]
    assert sorted(done) == sorted(jobs)  # every job once, by one phone or the other
    final = [service_client.get_job(j) for j in jobs]
    assert {j.status for j in final} == {"done"}
    claimed = Counter(j.claimed_device_id for j in final)
    for phone in (pixel, galaxy):
        outcome = by_serial[phone.serial]
        assert outcome.device_id is not None
        assert outcome.stats is not None
        # Both phones worked, and each ran exactly the jobs its device claimed.
        assert len(outcome.stats.done) == claimed[outcome.device_id] >= 1
        assert len(phone.benchmark_log()) == claimed[outcome.device_id]
    rows = [r for o in outcomes if o.device_id for r in stored(service, o.device_id)]
    assert sorted(r["layer_key"] for r in rows) == sorted(KEYS)


def test_serving_survives_a_lost_phone(
    service: Service, service_client: HwlatClient, make_phones: MakePhones, benchmark_binary: Path
) -> None:
    good, bad = make_phones(2)
    bad.update(state="unauthorized")
    outcomes = serve_phones(
        service_client,
        [android(good, benchmark_binary), android(bad, benchmark_binary)],
        Timing(),
        stop_when_idle=True,
    )
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, DeviceLost)
    assert isinstance(outcomes[1].error, MeasurementError)
    assert "unauthorized" in str(outcomes[1].error)
