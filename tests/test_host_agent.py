"""The host agent: real LiteRT and ONNX Runtime runs, direct mode, and the job loop over HTTP."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest

from device_agents.runners import (
    LiteRTRunner,
    OnnxRuntimeRunner,
    RuntimeOptions,
    Timing,
    measure,
    pinned,
)
from hwlat.service_process import hwlat_env
from latency_api.schemas.jobs import JobTiming
from models import get_space, parse
from models.export import export_layer
from tests.fixtures.cli import invoke
from tests.fixtures.services import MakeService, list_layers

pytestmark = pytest.mark.heavy

KEY = parse("mbconv_hw32_i8_o16_k3_e3_s2")


@pytest.mark.parametrize(
    ("runner", "fmt"), [(LiteRTRunner(), "tflite"), (OnnxRuntimeRunner(), "onnx")]
)
def test_runners_time_real_models(runner: LiteRTRunner | OnnxRuntimeRunner, fmt: str) -> None:
    model = export_layer(KEY, fmt)
    runs = measure(runner, model, RuntimeOptions(), Timing(warmup_runs=2, num_runs=15))
    stats = runs.statistics
    assert stats.count == 15 == len(runs.samples_ms)
    assert 0 < stats.min_ms <= stats.median_ms <= stats.max_ms
    assert stats.min_ms <= stats.mean_ms <= stats.max_ms
    assert stats.p90_ms is not None
    assert stats.median_ms <= stats.p90_ms <= stats.max_ms
    assert runner.version.split()[-1][0].isdigit()


def test_min_secs_keeps_timing_past_num_runs() -> None:
    model = export_layer(KEY, "tflite")
    started = time.monotonic()
    timing = Timing(warmup_runs=0, num_runs=1, min_secs=0.2)
    runs = measure(LiteRTRunner(), model, RuntimeOptions(), timing)
    assert time.monotonic() - started >= 0.2
    assert runs.statistics.count > 1


def test_max_secs_stops_early() -> None:
    model = export_layer(KEY, "tflite")
    timing = Timing(warmup_runs=0, num_runs=10_000_000, max_secs=0.1)
    runs = measure(LiteRTRunner(), model, RuntimeOptions(), timing)
    assert 1 <= runs.statistics.count < 10_000_000


def test_affinity_pins_and_restores() -> None:
    before = os.sched_getaffinity(0)
    with pinned(frozenset({0})):
        assert os.sched_getaffinity(0) == {0}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="outside"), pinned(frozenset({4096})):
        pass


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"num_runs": 0}, "num_runs"),
        ({"warmup_runs": -1}, "warmup_runs"),
        ({"repeats": 0}, "repeats"),
        ({"max_secs": 0}, "max_secs"),
    ],
)
def test_bad_timing_is_rejected(settings: dict[str, int], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Timing(**settings)  # type: ignore[arg-type]


def test_zero_threads_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        RuntimeOptions(num_threads=0)


def test_a_jobs_timing_wins_where_it_is_set_and_the_agents_fills_the_rest() -> None:
    agent = Timing(warmup_runs=3, num_runs=7, min_secs=0.0, repeats=2)
    job = JobTiming(num_runs=5, cooldown_secs=0.5)
    assert agent.under(job) == Timing(
        warmup_runs=3, num_runs=5, min_secs=0.0, repeats=2, cooldown_secs=0.5
    )
    assert agent.under(JobTiming()) == agent
    assert agent.wire().over(JobTiming()) == agent.wire()


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        measure(LiteRTRunner(), tmp_path / "nope.tflite", RuntimeOptions(), Timing())


def test_direct_mode_writes_json_and_csv(tmp_path: Path) -> None:
    env = hwlat_env(tmp_path)
    keys = ["mbconv_hw32_i8_o16_k3_e3_s2", "conv_hw64_i3_o16_k3_s2"]
    args = ["agent", "host", "--warmup-runs", "2", "--num-runs", "5", "--max-busy-pct", "100"]
    args.append("--no-gate")  # exact row counts: no re-measuring on a busy test machine
    for key in keys:
        args += ["--layer", key]
    out = invoke([*args, "-o", str(tmp_path / "r.json")], env)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["layer_key"] for r in rows] == keys
    assert all(r["count"] == 5 and r["median_ms"] > 0 for r in rows)
    assert rows[0]["tool_version"].startswith("ai-edge-litert")
    out = invoke([*args, "--repeats", "2", "-o", str(tmp_path / "r.csv")], env)
    assert out.returncode == 0, out.stderr
    with (tmp_path / "r.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["layer_key"] for r in table] == keys * 2  # interleaved repeats


def test_direct_mode_rejects_a_bad_output_name(tmp_path: Path) -> None:
    env = hwlat_env(tmp_path)
    out = invoke(
        [
            "agent",
            "host",
            "--layer",
            str(KEY),
            "--num-runs",
            "2",
            "--max-busy-pct",
            "100",
            "-o",
            str(tmp_path / "r.txt"),
        ],
        env,
    )
    assert out.returncode == 2
    assert ".json or .csv" in out.stderr
    assert "Traceback" not in out.stderr


def test_job_loop_profiles_a_space_through_the_service(make_service: MakeService) -> None:
    service = make_service("agent-loop")
    agent_env = service.cli_env()
    queued = invoke(
        [
            "jobs",
            "create",
            "--selector",
            "kind=host",
            "--space",
            "tiny-64",
            "--chunk",
            "8",
            "--warmup-runs",
            "2",
            "--num-runs",
            "5",
        ],
        agent_env,
    )
    assert queued.returncode == 0, queued.stderr
    assert len(queued.stdout.splitlines()) == 3  # 21 variants in chunks of 8
    # A job that leaves its timing to the agent: the agent's --num-runs applies to it.
    unset = invoke(["jobs", "create", "--selector", "kind=host", "--layer", str(KEY)], agent_env)
    assert unset.returncode == 0, unset.stderr
    ran = invoke(
        [
            "agent",
            "host",
            "--until-idle",
            "--name",
            "ci-host",
            "--max-busy-pct",
            "100",
            "--num-runs",
            "7",
            "--warmup-runs",
            "1",
            "--no-gate",
        ],
        agent_env,
    )
    assert ran.returncode == 0, ran.stderr
    assert "jobs done 4, failed 0, lost 0; 22 measurements stored" in ran.stdout
    listed = invoke(["jobs", "list"], agent_env)
    assert [line.split("\t")[1] for line in listed.stdout.splitlines()] == ["done"] * 4
    with service.http() as client:
        device = client.get("/v1/devices").json()["items"][0]
        rows = list_layers(client, device["id"])
        references = list_layers(client, device["id"], role="reference")
        drift = client.get(f"/v1/devices/{device['id']}/drift").json()
    assert device["kind"] == "host"
    assert device["runtime"] == "litert"
    variants = {str(k) for k in get_space("tiny-64").variants()}
    assert {r["layer_key"] for r in rows} == variants
    assert len(rows) == len(variants) + 1
    # The jobs that set --num-runs 5 were timed 5 times whatever the agent's flag said; the one
    # that did not was timed as the agent said (7).
    counts = sorted(r["count"] for r in rows)
    assert counts == [5] * len(variants) + [7]
    (extra,) = [r for r in rows if r["count"] == 7]
    assert extra["layer_key"] == str(KEY)
    # Every job timed the drift reference before and after itself, stored apart.
    assert len(references) == 2 * 4
    assert {r["job_id"] for r in references} == {j["job_id"] for j in drift["jobs"]}
    assert len(drift["jobs"]) == 4
    assert drift["reference_layer_key"] == references[0]["layer_key"]


def test_a_busy_host_waits_then_fails_the_measurement() -> None:
    import subprocess
    import sys

    from device_agents.errors import MeasurementError
    from device_agents.host import HostBackend

    # One spinning process keeps one CPU busy, whatever the machine's size: a limit of half a
    # CPU is exceeded on 2 cores as on 64.
    cpus = os.cpu_count() or 1
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        waits: list[float] = []
        backend = HostBackend(max_busy_fraction=0.5 / cpus, max_wait_s=1.0, sleep=waits.append)
        with pytest.raises(MeasurementError, match="host still busy"):
            backend.wait_until_quiet()
        assert waits  # it waited (polled) before giving up
    finally:
        spinner.kill()
        spinner.wait()
    assert HostBackend(max_busy_fraction=None).wait_until_quiet() is None


def test_a_quiet_window_stands_for_the_next_quiet_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine is sampled (a 0.25 s sleep) only when no window of the last two seconds
    showed it quiet: the windows' own readings count."""
    from device_agents import host
    from device_agents.host import HostBackend

    samples: list[float] = []

    def sample(interval_s: float = 0.25) -> float:
        samples.append(interval_s)
        return 0.0

    monkeypatch.setattr(host, "other_cpu_fraction", sample)
    backend = HostBackend(max_busy_fraction=1.0, use_probe=False)
    # Windows of 0.05 s at least: long enough for /proc/stat's clock ticks to give a reading.
    timing = Timing(warmup_runs=1, num_runs=3, min_secs=0.05)
    backend.measure_layer(KEY, timing)
    assert len(samples) == 1  # the first measurement samples the machine
    for _ in range(3):
        backend.measure_layer(KEY, timing)
    assert len(samples) == 1  # each window's own reading stood for the next check
    backend._quiet_until = 0.0  # two seconds without a quiet window
    backend.measure_layer(KEY, timing)
    assert len(samples) == 2


def test_litert_without_xnnpack_runs_on_the_builtin_kernels() -> None:
    model = export_layer(KEY, "tflite")
    runs = measure(
        LiteRTRunner(), model, RuntimeOptions(use_xnnpack=False), Timing(warmup_runs=1, num_runs=3)
    )
    assert runs.statistics.count == 3
    assert runs.statistics.min_ms > 0
