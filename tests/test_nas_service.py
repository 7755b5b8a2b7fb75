"""``hwlat search`` against a real service process: a short search, the loop closed through the
job queue, two Pareto processes sharing a PostgreSQL study, and the one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import optuna
import pytest
import torch

from hwlat.service_process import HWLAT
from models import SearchSpace, get_space
from models.space_spec import spec_from_dict
from models.units import BYTES_PER_MB
from nas.digits import load_digits
from nas.one_shot import OneShotConfig, save, train_one_shot
from tests.fixtures.cli import invoke
from tests.fixtures.databases import FreshDatabase
from tests.fixtures.factories import channel_spec, layer_measurement, network_measurement
from tests.fixtures.services import Service, register_device
from tests.nas_tables import peak_bytes

pytestmark = pytest.mark.heavy

TINY = get_space("tiny-64")
# Distinct, MAC-shaped layer latencies: larger candidates are slower, as on a device.
LAYER_MS = {str(k): round(0.05 + k.macs / 2e6, 4) for k in TINY.variants()}
SEARCH_TIMEOUT_S = 300


def measure_and_fit(client: httpx.Client, device_id: int, layer_ms: dict[str, float]) -> None:
    items = [layer_measurement(key, ms) for key, ms in layer_ms.items()]
    stored = client.post(
        "/v1/measurements/layers", json={"device_id": device_id, "measurements": items}
    )
    assert stored.status_code == 201, stored.text
    fitted = client.post(f"/v1/devices/{device_id}/predictors")
    assert fitted.status_code == 201, fitted.text


@pytest.fixture(scope="module")
def fitted_device(service: Service) -> int:
    """A device of the module's service with every tiny-64 layer measured and a predictor."""
    with service.http() as client:
        device_id = register_device(client)
        measure_and_fit(client, device_id, LAYER_MS)
    return device_id


@pytest.fixture(scope="module")
def bare_device(service: Service, fitted_device: int) -> int:
    """A device registered and never fitted."""
    with service.http() as client:
        device_id = register_device(client, name="no-predictor-yet", model="never fitted")
    assert device_id != fitted_device
    return device_id


def hwlat_search(service: Service, *args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(HWLAT), "search", *args, "--threads", "1"],
        env=service.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=SEARCH_TIMEOUT_S)
    return process.returncode, out, err


def search(service: Service, *args: str) -> tuple[int, str, str]:
    """``hwlat search ARGS`` in process (tests/fixtures/cli.py): one search needs no process of
    its own; the study shared by two processes below does."""
    done = invoke(["search", *args, "--threads", "1"], service.cli_env())
    return done.returncode, done.stdout, done.stderr


def reachable_target(service: Service, device: int) -> float:
    """The predicted latency of a mid-sized architecture: a target the space can hit."""
    with service.http() as client:
        answer = client.post(
            "/v1/predict",
            json={
                "device_id": device,
                "space": TINY.name,
                "architectures": [[1, 2, 0, 4]],
            },
        )
    assert answer.status_code == 200, answer.text
    return float(answer.json()["latency_ms"][0])


def predicted(
    service: Service, device: int, architecture: list[int], space: str = TINY.name
) -> float:
    with service.http() as client:
        body = {"device_id": device, "space": space, "architectures": [architecture]}
        return float(client.post("/v1/predict", json=body).json()["latency_ms"][0])


def spnas_args(device: int, target: float, report: Path, *extra: str) -> list[str]:
    return [
        "spnas",
        "--device",
        str(device),
        "--space",
        TINY.name,
        "--target-ms",
        f"{target}",
        "--epochs",
        "1",
        "--warmup-epochs",
        "0",
        "--resolution",
        "12",
        "--report",
        str(report),
        *extra,
    ]


def test_a_short_spnas_search_lands_on_the_target(
    service: Service, fitted_device: int, tmp_path: Path
) -> None:
    target = reachable_target(service, fitted_device)
    report_path = tmp_path / "spnas.json"
    code, out, err = search(service, *spnas_args(fitted_device, target, report_path))
    assert code == 0, err
    report = json.loads(report_path.read_text())
    result = report["result"]
    assert report["space"] == TINY.name
    assert report["latency"].startswith("predicted only")
    assert "accuracy is a proxy" in report["note"]
    assert "latency is real" in report["note"]
    # The predicted latency is the service's own, for the architecture reported.
    assert result["predicted_ms"] == pytest.approx(
        predicted(service, fitted_device, result["architecture"])
    )
    assert abs(result["predicted_ms"] - target) <= 0.02 * target
    assert result["measured_ms"] is None
    assert result["runtime_term_ms"] == pytest.approx(result["predicted_ms"], rel=1e-9)
    assert len(result["labels"]) == TINY.num_layers
    assert report["service_calls"] == {
        "runtime_table": 1,
        "channel_cost": 0,
        "predict": 1,
        "predicted_architectures": 1
        if report["decoded"]["architecture"] == result["architecture"]
        else 2,
        "measuring_jobs": 0,
    }
    assert "predicted only" in out
    assert "Single-Path NAS" in out


class FakeAgent:
    """Claims the device's job over HTTP and uploads networks at ``factor`` x predicted."""

    def __init__(self, service: Service, device: int, factor: float) -> None:
        self.service = service
        self.device = device
        self.factor = factor
        self.uploaded: dict[tuple[int, ...], float] = {}

    def serve_one_job(self) -> None:
        deadline = time.monotonic() + SEARCH_TIMEOUT_S
        with self.service.http() as client:
            while time.monotonic() < deadline:
                claim = client.post(
                    "/v1/jobs/claim",
                    json={"device_id": self.device, "agent": "test-agent"},
                )
                if claim.status_code == 200:
                    break
                time.sleep(0.2)
            else:
                raise TimeoutError("no job was queued")
            job = claim.json()
            archs = job["payload"]["architectures"]
            items = []
            for arch in archs:
                space = job["payload"]["space"]
                ms = round(self.factor * predicted(self.service, self.device, arch, space), 6)
                self.uploaded[tuple(arch)] = ms
                extra = {}
                if "memory" in job["payload"]["metrics"]:  # the job asked: its metric pass
                    (mb,) = predicted_memory_mb(self.service, self.device, [arch])
                    extra["peak_memory_bytes"] = round(self.factor * mb * BYTES_PER_MB)
                items.append(network_measurement(arch, ms, space=space, **extra))
            lease = {"id": job["id"], "lease_token": job["lease_token"]}
            stored = client.post(
                "/v1/measurements/networks",
                json={"device_id": self.device, "measurements": items, "job": lease},
            )
            stored.raise_for_status()
            done = client.post(
                f"/v1/jobs/{job['id']}/complete",
                json={
                    "lease_token": job["lease_token"],
                    "result": {
                        "kind": "networks",
                        "stored": len(items),
                        "ids": stored.json()["ids"],
                    },
                },
            )
            done.raise_for_status()


def test_measure_reports_target_predicted_and_measured(
    service: Service, fitted_device: int, tmp_path: Path
) -> None:
    target = reachable_target(service, fitted_device)
    agent = FakeAgent(service, fitted_device, factor=1.03)
    report_path = tmp_path / "measured.json"
    args = spnas_args(fitted_device, target, report_path, "--measure", "--measure-timeout", "120")
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(agent.serve_one_job)
        code, out, err = search(service, *args)
        served.result(timeout=30)  # re-raises whatever went wrong in the agent
    assert code == 0, err
    report = json.loads(report_path.read_text())
    result = report["result"]
    assert report["latency"] == "measured on the device"
    assert result["measured_ms"] == pytest.approx(agent.uploaded[tuple(result["architecture"])])
    assert result["measured_ms"] == pytest.approx(1.03 * result["predicted_ms"], rel=1e-5)
    assert result["measured_error_pct"] == pytest.approx(
        100 * (result["measured_ms"] - target) / target
    )
    assert report["service_calls"]["measuring_jobs"] == 1
    assert "measured ms" in out


CHANNELS = SearchSpace(spec_from_dict(channel_spec()))


@pytest.fixture(scope="module")
def channel_device(service: Service) -> int:
    """A device with every layer of a small channel space measured (MAC-shaped) and fitted."""
    with service.http() as client:
        registered = client.post("/v1/spaces", json=CHANNELS.to_dict())
        assert registered.status_code in (200, 201), registered.text
        device_id = register_device(client, name="channel-device", model="channels")
        layer_ms = {str(k): round(0.05 + k.macs / 2e6, 4) for k in CHANNELS.variants()}
        measure_and_fit(client, device_id, layer_ms)
    return device_id


def figs_args(device: int, target: float, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "figs",
        "--device",
        str(device),
        "--space",
        CHANNELS.name,
        "--target-ms",
        f"{target}",
        "--epochs",
        "2",
        "--warmup-epochs",
        "1",
        "--resolution",
        "12",
        "--tolerance-pct",
        "5",
        "--report",
        str(tmp_path / "figs.json"),
        "--plot",
        str(tmp_path / "figs.png"),
        *extra,
    ]


def test_figs_lands_measures_and_compares_with_its_flops_twin(
    service: Service, channel_device: int, tmp_path: Path
) -> None:
    narrow = predicted(service, channel_device, [0] * CHANNELS.num_layers, CHANNELS.name)
    wide = predicted(service, channel_device, [1] * CHANNELS.num_layers, CHANNELS.name)
    target = narrow + 0.5 * (wide - narrow)
    agent = FakeAgent(service, channel_device, factor=1.02)
    args = figs_args(channel_device, target, tmp_path, "--flops-twin", "--measure")
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(agent.serve_one_job)
        code, out, err = search(service, *args)
        served.result(timeout=30)
    assert code == 0, err
    report = json.loads((tmp_path / "figs.json").read_text())
    result, twin = report["result"], report["flops_twin"]
    assert report["latency"] == "measured on the device"
    assert report["service_calls"]["channel_cost"] == 1
    assert report["service_calls"]["measuring_jobs"] == 1
    # Landed on the target as the service predicts it, and measured through the job queue.
    assert abs(result["predicted_ms"] - target) <= 0.05 * target
    assert result["cost_value"] == pytest.approx(result["predicted_ms"], rel=1e-9)
    assert result["measured_ms"] == pytest.approx(1.02 * result["predicted_ms"], rel=1e-5)
    # The twin searched FLOPs, steered to the FLOPs the latency search found.
    assert twin["unit"] == "MFLOPs"
    assert twin["target"] == pytest.approx(result["mflops"])
    assert abs(twin["mflops"] - result["mflops"]) <= 0.05 * result["mflops"]
    assert twin["measured_ms"] == pytest.approx(agent.uploaded[tuple(twin["architecture"])])
    assert len(result["channels"]) == CHANNELS.num_layers
    assert (tmp_path / "figs.png").stat().st_size > 0
    assert "FiGS" in out
    assert "MFLOPs" in out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not a channel space", "expansion only"),
        ("target outside the range", "outside what figs-tiny-32 can reach"),
    ],
)
def test_figs_bad_input_is_a_one_line_error(
    service: Service,
    channel_device: int,
    fitted_device: int,
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    if case == "not a channel space":
        args = figs_args(fitted_device, 1.0, tmp_path)
        args[args.index(CHANNELS.name)] = TINY.name
    else:
        args = figs_args(channel_device, 1e6, tmp_path)
    done = invoke(["search", *args, "--threads", "1"], service.cli_env())
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert not (tmp_path / "figs.json").exists()


@pytest.fixture
def postgres_url(fresh_database: FreshDatabase) -> str:
    return fresh_database("postgresql")


def test_two_pareto_processes_share_one_postgres_study(
    fitted_device: int, service: Service, postgres_url: str, tmp_path: Path
) -> None:
    supernet = tmp_path / "tiny.pt"
    digits = load_digits(12, TINY.input_channels, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        save(train_one_shot(TINY, digits, OneShotConfig(epochs=1, seed=0)), supernet)
    finally:
        torch.set_num_threads(threads)
    trials, population = 24, 4
    processes = [
        hwlat_search(
            service,
            "pareto",
            "--device",
            str(fitted_device),
            "--space",
            TINY.name,
            "--trials",
            str(trials),
            "--population",
            str(population),
            "--storage",
            postgres_url,
            "--study",
            "shared-study",
            "--supernet",
            str(supernet),
            "--resolution",
            "12",
            "--report",
            str(tmp_path / f"report-{n}.json"),
            "--plot",
            str(tmp_path / f"front-{n}.png"),
        )
        for n in range(2)
    ]
    outcomes = [finish(p) for p in processes]
    for code, _, err in outcomes:
        assert code == 0, err
    reports = [json.loads((tmp_path / f"report-{n}.json").read_text()) for n in range(2)]
    study = optuna.load_study(study_name="shared-study", storage=postgres_url)
    all_trials = study.get_trials(deepcopy=False)
    # Exactly the budget, every trial finished once, by one of the two processes.
    assert len(all_trials) == trials
    assert sorted(t.number for t in all_trials) == list(range(trials))
    assert {t.state for t in all_trials} == {optuna.trial.TrialState.COMPLETE}
    assert {t.user_attrs["worker"] for t in all_trials} <= {0, 1}
    assert sorted(r["worker"] for r in reports) == [0, 1]
    assert sum(r["evaluated_here"] for r in reports) == trials
    assert all(r["trials_in_study"] == trials for r in reports)
    # Latencies were asked a population at a time, never one architecture per request.
    batches = sum(r["service_calls"]["predict"] for r in reports)
    assert batches <= trials // population + 2
    for trial in all_trials:
        arch = [int(TINY.layers[n].candidates.index(c)) for n, c in enumerate(_labels(trial))]
        assert trial.values[1] == pytest.approx(predicted(service, fitted_device, arch))
    front = reports[1]["front"]
    assert front
    assert [row["latency_ms"] for row in front] == sorted(row["latency_ms"] for row in front)
    assert [row["accuracy"] for row in front] == sorted(row["accuracy"] for row in front)
    assert "one-shot" in reports[0]["accuracy_estimate"]
    assert reports[0]["latency"].startswith("predicted only")
    assert (tmp_path / "front-0.png").read_bytes()[:4] == b"\x89PNG"


def _labels(trial: optuna.trial.FrozenTrial) -> list[Any]:
    return [
        next(c for c in TINY.layers[n].candidates if c.label == trial.params[f"layer_{n:02d}"])
        for n in range(TINY.num_layers)
    ]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown device", "no device with id 987654"),
        ("unknown space", "no search space 'no-such-space'"),
        ("target outside the range", "outside what tiny-64 can reach"),
        ("no predictor yet", "hwlat fit --device"),
    ],
)
def test_bad_input_is_a_one_line_error_with_status_2(
    bare_device: int, fitted_device: int, service: Service, tmp_path: Path, case: str, expected: str
) -> None:
    device, space, target = fitted_device, TINY.name, reachable_target(service, fitted_device)
    if case == "unknown device":
        device = 987654
    elif case == "unknown space":
        space = "no-such-space"
    elif case == "target outside the range":
        target = 0.001
    else:
        device = bare_device
    args = ["--device", str(device), "--space", space, "--report", str(tmp_path / "r.json")]
    # In process: the refusals come before any search starts, and a process proves no more.
    searches = [["spnas", *args, "--target-ms", str(target)]]
    if case != "target outside the range":  # pareto takes no target
        plot = str(tmp_path / "front.png")
        searches.append(["pareto", *args, "--trials", "4", "--plot", plot])
    for search in searches:
        done = invoke(["search", *search, "--threads", "1"], service.cli_env())
        code, out, err = done.returncode, done.stdout, done.stderr
        assert code == 2, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
        assert expected in lines[0]
    assert not (tmp_path / "r.json").exists()
    assert not (tmp_path / "front.png").exists()


def test_search_help_explains_the_searches() -> None:
    result = invoke(["search", "--help"], {**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    for words in ("spnas", "pareto", "figs", "Single-Path NAS", "Pareto front", "FiGS", "proxy"):
        assert words in result.stdout


@pytest.fixture(scope="module")
def memory_device(service: Service) -> int:
    """A device with every tiny-64 layer measured for latency and peak memory, a few networks
    too (the memory model's calibration), and a predictor fitted from them."""
    with service.http() as client:
        device_id = register_device(client, name="memory-device", model="measured for memory")
        layers = [
            layer_measurement(
                str(key),
                LAYER_MS[str(key)],
                peak_memory_bytes=round(peak_bytes([key])),
                memory_method="test: exact",
            )
            for key in TINY.variants()
        ]
        stored = client.post(
            "/v1/measurements/layers", json={"device_id": device_id, "measurements": layers}
        )
        assert stored.status_code == 201, stored.text
        archs = [[int(c) for c in a] for a in TINY.sample(6, seed=4)]
        networks = [
            network_measurement(
                a,
                sum(LAYER_MS.get(str(k), 0.0) for k in TINY.network(a)),
                space=TINY.name,
                peak_memory_bytes=round(peak_bytes(TINY.network(a))),
                memory_method="test: exact",
            )
            for a in archs
        ]
        stored = client.post(
            "/v1/measurements/networks", json={"device_id": device_id, "measurements": networks}
        )
        assert stored.status_code == 201, stored.text
        fitted = client.post(f"/v1/devices/{device_id}/predictors")
        assert fitted.status_code == 201, fitted.text
    return device_id


def predicted_memory_mb(service: Service, device: int, archs: list[list[int]]) -> list[float]:
    with service.http() as client:
        body = {"device_id": device, "space": TINY.name, "architectures": archs}
        answer = client.post("/v1/predict", json={**body, "metrics": ["memory"]})
    assert answer.status_code == 200, answer.text
    return [float(v) for v in answer.json()["peak_memory_mb"]]


def test_pareto_over_accuracy_latency_and_memory_with_a_limit_against_random(
    service: Service, memory_device: int, tmp_path: Path
) -> None:
    sample = [[int(c) for c in a] for a in TINY.sample(32, seed=9)]
    limit_mb = float(np.median(predicted_memory_mb(service, memory_device, sample)))
    report_path, plot_path = tmp_path / "pareto.json", tmp_path / "pareto.png"
    trials, population = 12, 4
    code, out, err = search(
        service,
        "pareto",
        "--device",
        str(memory_device),
        "--space",
        TINY.name,
        "--trials",
        str(trials),
        "--population",
        str(population),
        "--supernet-epochs",
        "1",
        "--resolution",
        "12",
        "--objectives",
        "accuracy,latency,memory",
        "--max-memory-mb",
        f"{limit_mb}",
        "--compare-random",
        "16",
        "--report",
        str(report_path),
        "--plot",
        str(plot_path),
    )
    assert code == 0, err
    report = json.loads(report_path.read_text())
    assert report["objectives"] == ["accuracy", "latency", "memory"]
    assert report["constraints"] == {"max_peak_memory_mb": limit_mb}
    assert "2^20" in report["units"]["peak_memory_mb"]
    rows = report["trials"]
    assert len(rows) == trials
    # Every trial's memory is the service's own prediction; energy was never asked for.
    memory = predicted_memory_mb(service, memory_device, [r["architecture"] for r in rows])
    assert [r["peak_memory_mb"] for r in rows] == pytest.approx(memory)
    assert all("energy_mj" not in r for r in rows)
    feasible = [r for r in rows if r["peak_memory_mb"] <= limit_mb]
    assert report["trials_feasible"] == len(feasible)
    front = report["front"]
    assert front
    for point in front:
        assert point["peak_memory_mb"] <= limit_mb
        # Not beaten by any feasible trial on all three objectives.
        mine = (-point["accuracy"], point["latency_ms"], point["peak_memory_mb"])
        for other in feasible:
            theirs = (-other["accuracy"], other["latency_ms"], other["peak_memory_mb"])
            assert not (all(t <= m for t, m in zip(theirs, mine, strict=True)) and theirs != mine)
    hv = report["hypervolume"]
    random = hv["random"]
    assert random["architectures"] == 16
    assert hv["unit"] == "accuracy x ms x MB"
    # One reference for both sets, beyond the worst of either.
    worst_ms = max(r["latency_ms"] for r in feasible)
    assert hv["reference"]["accuracy"] == 0.0
    assert hv["reference"]["latency_ms"] >= 1.1 * worst_ms - 1e-9
    assert hv["reference"]["peak_memory_mb"] <= 1.1 * limit_mb + 1e-9
    assert hv["value"] > 0
    if random["value"] > 0:
        assert random["ratio"] == pytest.approx(hv["value"] / random["value"])
    # A probe before training, one request per population, one for the random sample.
    assert report["service_calls"]["predict"] == 1 + trials // population + 1
    assert "study / random" in out
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_path.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--objectives", "latency,memory"], "accuracy is always an objective"),
        (["--objectives", "accuracy,speed"], "unknown objective 'speed'"),
        (["--max-latency-ms", "0.0001"], "no architecture of tiny-64 is that fast"),
        (["--objectives", "accuracy,energy"], "--metric energy"),
    ],
)
def test_pareto_refuses_bad_objectives_and_limits_in_one_line(
    service: Service, memory_device: int, tmp_path: Path, extra: list[str], expected: str
) -> None:
    args = ["--device", str(memory_device), "--space", TINY.name, "--trials", "4"]
    report, plot = tmp_path / "r.json", tmp_path / "p.png"
    done = invoke(
        ["search", "pareto", *args, *extra, "--report", str(report), "--plot", str(plot)],
        service.cli_env(),
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert not report.exists()


def test_measure_puts_the_front_s_measured_memory_beside_its_predicted(
    service: Service, memory_device: int, tmp_path: Path
) -> None:
    agent = FakeAgent(service, memory_device, factor=1.04)
    report_path = tmp_path / "pareto.json"
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(agent.serve_one_job)
        code, out, err = search(
            service,
            "pareto",
            "--device",
            str(memory_device),
            "--space",
            TINY.name,
            "--trials",
            "8",
            "--population",
            "4",
            "--supernet-epochs",
            "1",
            "--resolution",
            "12",
            "--objectives",
            "accuracy,latency,memory",
            "--measure",
            "--measure-timeout",
            "120",
            "--report",
            str(report_path),
            "--plot",
            str(tmp_path / "pareto.png"),
        )
        served.result(timeout=30)
    assert code == 0, err
    front = json.loads(report_path.read_text())["front"]
    assert front
    for row in front:
        assert row["measured_ms"] == pytest.approx(agent.uploaded[tuple(row["architecture"])])
        # Bytes are whole, so the MB come back within a byte of 1.04 x predicted.
        assert row["measured_peak_memory_mb"] == pytest.approx(
            1.04 * row["peak_memory_mb"], rel=1e-6
        )
        assert row["memory_error_pct"] == pytest.approx(100 * (1 / 1.04 - 1), abs=1e-3)
    # The summary's row of the first front point shows its measured memory too.
    first = front[0]
    assert f"{first['measured_peak_memory_mb']:.3f}" in out
