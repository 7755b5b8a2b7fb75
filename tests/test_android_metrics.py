"""Peak memory and energy per inference on (emulated) phones: the readers, and the real runs.

The emulated phone's power follows the CPU time its benchmark_model really spent (``cpu_w`` per
CPU second, logged per run as ``cpu_s``), so the energy the agent reports can be checked
against what the phone knows it drew.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from device_agents import phone_energy as energy
from device_agents.android import AndroidBackend
from device_agents.benchmark_output import DELTA_METHODS, PEAK_METHOD
from device_agents.errors import MeasurementError
from device_agents.metrics import DeviceMetric, MetricReadings
from device_agents.runners import Timing
from device_agents.worker import run_worker
from latency_api import HwlatClient, HwlatError
from latency_api.schemas.jobs import JobIn, JobTiming, ProfileLayers, split_payloads
from latency_api.schemas.predictors import FitIn
from models import Op, get_space, parse
from tests.android_helpers import FAST, android
from tests.emulated_phone.power import DEFAULT_POWER, RAILS
from tests.emulated_phone.shell import run
from tests.emulated_phone.state import PhoneDir

pytestmark = pytest.mark.heavy

SMALL = "mbconv_hw8_i24_o24_k3_e6_s1"
BIG = "mbconv_hw16_i16_o24_k5_e6_s1"  # four times the multiply-adds per inference
MEMORY = frozenset({DeviceMetric.memory})
ENERGY = frozenset({DeviceMetric.energy})
MIB = 1024 * 1024


def metered(phone: PhoneDir, binary: Path, **options: Any) -> AndroidBackend:
    """A backend with a short energy window, as the whole suite must stay fast."""
    options.setdefault("energy_window_s", 0.4)
    # Polled faster than the agent's default (0.05 s): the emulated sampler is Python beside a
    # running model, and on a loaded 2-core CI machine it must still clear the 10 Hz floor.
    options.setdefault("gauge_period_s", 0.02)
    return android(phone, binary, **options)


def drawn_mj_per_inference(run_entry: dict[str, Any]) -> float:
    """What the emulated phone drew above idle per inference of one logged run (its truth)."""
    printed = run_entry["stdout"] + run_entry["stderr"]
    inferences = sum(int(n) for n in re.findall(r"count=(\d+)", printed))
    return float(DEFAULT_POWER["cpu_w"]) * run_entry["cpu_s"] / inferences * 1e3


def energy_runs(phone: PhoneDir) -> list[dict[str, Any]]:
    return [r for r in phone.benchmark_log() if "--num_runs=1" in r["args"]]


# -- readers --------------------------------------------------------------------------------


ODPM = """t=349894
CH0(T=349894)[S10M_VDD_TPU], 5578756
CH1(T=349894)[VSYS_PWR_MODEM], 29110941
t=349901
CH0(T=349901)[VSYS_PWR_DISPLAY], 1203339
"""


def test_energy_value_blocks_of_every_chip_are_read_and_bad_lines_refused() -> None:
    reading = energy.parse_energy_value(ODPM)
    assert reading.stamps_ms == (349894, 349901)
    assert reading.energy_uws == {
        "S10M_VDD_TPU": 5578756,
        "VSYS_PWR_MODEM": 29110941,
        "VSYS_PWR_DISPLAY": 1203339,
    }
    later = energy.parse_energy_value(
        ODPM.replace("349894", "350894").replace("349901", "350901").replace("1203339", "2203339")
    )
    assert energy.rails_delta(reading, later) == (pytest.approx(1.0), pytest.approx(1.0))
    with pytest.raises(MeasurementError, match="backwards"):
        energy.rails_delta(later, reading)
    with pytest.raises(MeasurementError, match="line 2"):
        energy.parse_energy_value("t=1\nCH0[S10M_VDD_TPU]:TPU\n")
    with pytest.raises(MeasurementError, match="no timestamp"):
        energy.parse_energy_value("")


def test_gauge_samples_survive_interleaved_output_and_units_and_sign_are_inferred() -> None:
    lines = []
    for i in range(11):
        lines += [f"/proc/uptime:{100 + i * 0.05:.2f} 700.00", "INFO: count=3 curr=5"]
        lines += [f"{energy.CURRENT}:{-250 - 250 * (i % 2)}", f"{energy.VOLTAGE}:4000"]
    samples = energy.parse_gauge_samples("\n".join(lines))
    assert len(samples) == 11
    units = energy.GaugeUnits.infer(samples, charging=False)
    assert "mA, mV" in units.note
    assert "negative" in units.note
    joules, span_s = units.energy(samples)
    assert span_s == pytest.approx(0.5)
    assert joules == pytest.approx(1.5 * 0.5, rel=0.01)  # 0.375 A mean at 4 V, half a second
    positive = [energy.GaugeSample(s.uptime_s, -s.current, s.voltage) for s in samples]
    assert energy.GaugeUnits.infer(positive, charging=False).discharge_sign == 1
    with pytest.raises(MeasurementError, match="below 10 Hz"):
        units.energy(samples[::4])
    with pytest.raises(MeasurementError, match="neither µV nor mV"):
        energy.GaugeUnits.infer([energy.GaugeSample(1.0, -1, 40)], charging=False)


def test_charging_is_read_off_the_supplies() -> None:
    supply = energy.SUPPLY
    assert energy.charging_reasons({f"{supply}/battery/status": "Discharging"}) == []
    assert energy.charging_reasons(
        {f"{supply}/battery/status": "Charging", f"{supply}/usb/online": "1"}
    ) == ["battery status Charging", "usb supply online"]


def test_the_emulated_rails_are_roots_and_su_can_be_denied(phone: PhoneDir) -> None:
    glob = energy.ENERGY_GLOB
    denied = run(phone, f"cat {glob}", phone.control())
    assert denied.code == 1
    assert "Permission denied" in "".join(denied.stderr)
    rooted = run(phone, f"su -c 'cat {glob}'", phone.control())
    assert set(energy.parse_energy_value("".join(rooted.stdout)).energy_uws) == {
        r[2] for r in RAILS
    }
    phone.set_power(rooted=False)
    assert run(phone, f"su -c 'cat {glob}'", phone.control()).code == 127
    phone.set_power(rails=False)
    assert "No such file" in "".join(run(phone, f"cat {glob}", phone.control()).stderr)


# -- peak memory ------------------------------------------------------------------------------


def test_memory_is_a_separate_run_with_the_polling_flags(
    phone: PhoneDir, benchmark_binary: Path
) -> None:
    backend = android(phone, benchmark_binary)
    backend.measure_layer(parse(SMALL), FAST)
    readings = backend.measure_metrics(parse(SMALL), MEMORY, FAST)
    timed, memory = phone.benchmark_log()
    assert not any("memory" in a for a in timed["args"])
    assert "--report_peak_memory_footprint=true" in memory["args"]
    assert "--memory_footprint_check_interval_ms=10" in memory["args"]
    assert timed["graph"] == memory["graph"]
    printed = re.search(r"via periodic monitoring: ([\d.e+]+)", memory["stderr"])
    assert printed is not None
    assert readings.peak_memory_bytes == round(float(printed[1]) * MIB)
    assert readings.memory_method == PEAK_METHOD
    assert readings.energy_mj is None  # not asked for
    # A Python process with LiteRT loaded: tens of megabytes, not the agent's gigabyte.
    assert 10 * MIB < readings.peak_memory_bytes < 400 * MIB


def test_an_older_build_without_polling_gives_its_delta_and_says_so(
    phone: PhoneDir, benchmark_binary: Path
) -> None:
    phone.update(output_form="legacy")
    readings = android(phone, benchmark_binary).measure_metrics(parse(BIG), MEMORY, FAST)
    (run_entry,) = phone.benchmark_log()
    assert "Unconsumed cmdline flags: --report_peak_memory_footprint=true" in run_entry["stdout"]
    printed = re.search(r"overall=([\d.e+]+)", run_entry["stdout"])
    assert printed is not None
    method = readings.memory_method or ""
    if float(printed[1]) > 0:
        assert readings.peak_memory_bytes == round(float(printed[1]) * MIB)
        assert method.startswith(DELTA_METHODS["Memory footprint delta from the start of the tool"])
    else:  # the resident set did not grow past its high-water mark: no figure, and why
        assert readings.peak_memory_bytes is None
        assert method.startswith("unavailable: benchmark_model reported 0 MB")
    assert "no --report_peak_memory_footprint" in method


# -- energy -----------------------------------------------------------------------------------


def energy_of(backend: AndroidBackend, key: str) -> MetricReadings:
    return backend.measure_metrics(parse(key), ENERGY, FAST)


def test_energy_from_the_rails_matches_what_the_phone_drew(
    phone: PhoneDir, benchmark_binary: Path
) -> None:
    backend = metered(phone, benchmark_binary)
    small, big = energy_of(backend, SMALL), energy_of(backend, BIG)
    truth = [drawn_mj_per_inference(r) for r in energy_runs(phone)]
    for readings, drawn in zip((small, big), truth, strict=True):
        assert readings.energy_method == energy.RAILS_METHOD + ", read via su"
        detail = readings.energy_detail or {}
        assert detail["source"] == "rails"
        assert detail["charging"] is False
        assert len(detail["rails"]) == len(RAILS)
        # The idle window cancels the idle power exactly; what is left is the model's work.
        assert readings.energy_mj == pytest.approx(drawn, rel=0.05)
        assert detail["idle_w"] == pytest.approx(DEFAULT_POWER["idle_w"] * 0.75, rel=0.02)
    assert small.energy_mj is not None
    assert big.energy_mj is not None
    assert 0 < small.energy_mj < big.energy_mj


@pytest.mark.parametrize(
    ("power", "why"),
    [
        ({"rooted": False}, "su failed"),
        ({"rails": False, "discharge_negative": False}, "does not exist"),
    ],
)
def test_without_readable_rails_the_fuel_gauge_is_sampled_on_the_phone(
    phone: PhoneDir, benchmark_binary: Path, power: dict[str, Any], why: str
) -> None:
    phone.set_power(**power)
    backend = metered(phone, benchmark_binary)
    small, big = energy_of(backend, SMALL), energy_of(backend, BIG)
    truth = [drawn_mj_per_inference(r) for r in energy_runs(phone)]
    for readings, drawn in zip((small, big), truth, strict=True):
        method = readings.energy_method or ""
        assert method.startswith(energy.GAUGE_METHOD)
        assert why in method
        detail = readings.energy_detail or {}
        assert detail["source"] == "fuel gauge"
        assert why in detail["no_rails"]
        assert detail["gauge_hz"] >= energy.MIN_GAUGE_HZ
        sign = "negative" if power.get("discharge_negative", True) else "positive"
        assert f"discharge reads {sign}" in detail["units"]
        # The whole phone, sampled 20 times a second: close to the truth, not exact.
        assert readings.energy_mj == pytest.approx(drawn, rel=0.3)
        # (Idle is the sampler beside a `sleep`, whose thread costs the emulator a little CPU.)
        assert detail["idle_w"] == pytest.approx(DEFAULT_POWER["idle_w"], rel=0.1)
    assert small.energy_mj is not None
    assert big.energy_mj is not None
    assert 0 < small.energy_mj < big.energy_mj


def test_a_charging_phone_is_refused_unless_allowed_which_is_recorded(
    phone: PhoneDir, benchmark_binary: Path
) -> None:
    phone.set_power(charging=True)
    with pytest.raises(MeasurementError, match=r"battery status Charging.*--allow-charging"):
        energy_of(metered(phone, benchmark_binary), SMALL)
    assert phone.benchmark_log() == []  # refused before running anything
    readings = energy_of(metered(phone, benchmark_binary, allow_charging=True), SMALL)
    detail = readings.energy_detail or {}
    assert detail["charging"] is True
    assert detail["charging_reasons"] == ["battery status Charging", "usb supply online"]
    assert readings.energy_mj == pytest.approx(
        drawn_mj_per_inference(phone.benchmark_log()[0]), rel=0.05
    )


# -- through the service ----------------------------------------------------------------------


def test_a_job_asking_for_memory_and_energy_stores_them_on_one_row_per_layer(
    service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    backend = metered(phone, benchmark_binary)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(
        JobIn(
            device_id=device_id,
            payload=ProfileLayers(layer_keys=[SMALL, BIG], metrics=["memory", "energy"]),
            timing=JobTiming(warmup_runs=2, num_runs=5, repeats=2),
        )
    )
    stats = run_worker(
        service_client,
        backend,
        device_id,
        "android:metrics",
        Timing(),
        reference=False,
        stop_when_idle=True,
    )
    assert stats.done == [job.id]
    rows = list(service_client.iter_layer_measurements(device_id=device_id))
    assert len(rows) == 4  # two layers, two passes
    carriers = {r.layer_key: r for r in rows if r.energy_mj is not None}
    assert sorted(carriers) == sorted([SMALL, BIG])
    for row in rows:
        if row not in carriers.values():
            assert (row.peak_memory_bytes, row.energy_method) == (None, None)
    for row in carriers.values():
        assert row.peak_memory_bytes is not None
        assert row.peak_memory_bytes > 10 * MIB
        assert row.memory_method == PEAK_METHOD
        assert row.energy_method == energy.RAILS_METHOD + ", read via su"
        assert row.energy_detail is not None
        assert row.energy_detail["charging"] is False
    assert 0 < carriers[SMALL].energy_mj < carriers[BIG].energy_mj  # type: ignore[operator]
    # Timed passes, then per layer one memory run and one energy run, in that order.
    flags = [" ".join(r["args"]) for r in phone.benchmark_log()]
    assert len(flags) == 4 + 2 * 2
    assert all("memory" not in f and "--num_runs=5" in f for f in flags[:4])
    assert ["--report_peak_memory_footprint=true" in f for f in flags[4:]] == [True, False] * 2


def test_a_job_asking_for_energy_on_a_charging_phone_fails_before_any_timed_run(
    service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    phone.set_power(charging=True)
    backend = metered(phone, benchmark_binary)
    device_id = service_client.register_device(backend.describe()).id
    job = service_client.create_job(
        JobIn(
            device_id=device_id,
            payload=ProfileLayers(layer_keys=[SMALL, BIG], metrics=["energy"]),
            timing=JobTiming(warmup_runs=2, num_runs=5),
            max_attempts=1,
        )
    )
    stats = run_worker(
        service_client,
        backend,
        device_id,
        "android:charging",
        Timing(),
        reference=False,
        stop_when_idle=True,
    )
    assert stats.failed == [job.id]
    assert phone.benchmark_log() == []  # no timed pass was spent on a job that must fail
    failed = service_client.get_job(job.id)
    assert failed.error is not None
    assert "battery status Charging" in failed.error
    assert list(service_client.iter_layer_measurements(device_id=device_id)) == []


def test_a_phone_s_energy_is_fitted_and_predicted_as_a_sum_over_layers(
    service_client: HwlatClient, phone: PhoneDir, benchmark_binary: Path
) -> None:
    """The whole energy path on a phone whose rails follow the load it really runs: layers and
    networks measured through jobs, a fit, and /v1/predict's energy of networks it never saw."""
    space = get_space("tiny-64")
    phone.update(heat_per_run_c=0.0)  # some hundred runs: the default heat would stop them
    backend = metered(phone, benchmark_binary, energy_window_s=0.25)
    device_id = service_client.register_device(backend.describe()).id
    archs = [[int(c) for c in a] for a in space.sample(6, seed=3)]
    # The classifier (1,280 multiply-adds) runs in under a microsecond, which benchmark_model
    # prints as min=0 and the parser refuses; the energy regression estimates it instead.
    used = dict.fromkeys(k for a in archs for k in space.network(a))
    layers = [k for k in used if k.op not in (Op.LOGITS, Op.SKIP)]
    calibration, held = archs[:4], archs[4:]
    timing = JobTiming(warmup_runs=1, num_runs=3)
    for payload in split_payloads(
        layers=layers,
        space=space.name,
        architectures=calibration,
        chunk=50,
        metrics=[DeviceMetric.energy],
    ) + split_payloads(
        space=space.name, architectures=held, chunk=50, metrics=[DeviceMetric.energy]
    ):
        service_client.create_job(JobIn(device_id=device_id, payload=payload, timing=timing))
    stats = run_worker(
        service_client,
        backend,
        device_id,
        "android:energy",
        Timing(),
        reference=False,
        stop_when_idle=True,
    )
    assert stats.failed == []
    measured = {
        tuple(r.architecture): r.energy_mj
        for r in service_client.iter_network_measurements(device_id=device_id)
        if r.energy_mj is not None
    }
    service_client.fit_predictor(device_id, FitIn(holdout={space.name: held}))
    predicted = service_client.predict(device_id, space.name, held, metrics=["energy"]).energy_mj
    assert predicted is not None
    truth = [measured[tuple(a)] for a in held]
    # The calibration saw none of these networks: the layers' sum carries them. A window of a
    # quarter second on the emulated rails is noisy (one network read 0.39 mJ where a near twin
    # read 0.28), so this checks the scale a wrong unit or aggregation would miss by far more.
    for p, t in zip(predicted, truth, strict=True):
        assert 0.5 * t < p < 2 * t
    # And a network's energy is no sum of its layers' memory: asking for memory says so.
    with pytest.raises(HwlatError, match="--metric memory"):
        service_client.predict(device_id, space.name, held, metrics=["memory"])
