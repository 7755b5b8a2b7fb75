"""``hwlat demo``: the main job end to end on this machine.

Start the service on the embedded default (SQLite), register the host as a device, profile
the space's variant set through the job queue, measure calibration networks, fit a predictor,
validate it on fresh random architectures measured end to end, print a summary with the
baselines and write ``hwlat-report.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import typer

from device_agents.client import ServiceClient
from device_agents.host import HostBackend
from device_agents.job_specs import job_specs
from device_agents.runners import DEFAULT_MIN_SECS
from hwlat.pipeline import Timings, host_agent_runner
from hwlat.validate import format_report, queue_networks, validate
from latency_service.process import ServiceProcess, create_token, hwlat_env
from models import get_space


def run_demo(
    *,
    space_name: str,
    workdir: Path,
    report_path: Path,
    n_validate: int,
    n_calibrate: int,
    repeats: int,
    num_runs: int,
    seed: int,
    keep_serving: bool,
    port: int | None,
    max_busy_fraction: float | None = 0.3,
) -> dict[str, Any]:
    space = get_space(space_name)
    started = time.monotonic()
    data_dir = workdir / "data"
    # A fresh database each run: the report speaks of this run's measurements only. The
    # export cache (~/.cache/hwlat) is kept, so a second run skips the conversions.
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = hwlat_env(data_dir)
    server = ServiceProcess(env, workdir / "service.log", port=port)
    server.start()
    try:
        token = create_token(env, "admin", name="demo")
        # A read token for people: the dashboard needs nothing more.
        dashboard_token = create_token(env, "read", name="dashboard")
        typer.echo(f"service up at {server.url} (SQLite in {data_dir}); log: {server.log_path}")
        with ServiceClient(server.url, token) as client:
            backend = HostBackend(max_busy_fraction=max_busy_fraction)
            report = _pipeline(
                client, backend, space, n_validate, n_calibrate, repeats, num_runs, seed
            )
        report["seconds_total"] = time.monotonic() - started
        report["service_url"] = server.url
        report["dashboard_url"] = f"{server.url}/dashboard"
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        _summary(report, report_path)
        typer.echo(f"dashboard: {report['dashboard_url']} (sign in with {dashboard_token})")
        if keep_serving:
            typer.echo(f"service kept up at {server.url} (token {token}); Ctrl-C to stop")
            _wait_forever()
    finally:
        server.close()
    return report


def _pipeline(
    client: ServiceClient,
    backend: HostBackend,
    space: Any,
    n_validate: int,
    n_calibrate: int,
    repeats: int,
    num_runs: int,
    seed: int,
) -> dict[str, Any]:
    device_id = client.register_device(backend.describe())
    settings = {
        "warmup_runs": 10,
        "num_runs": num_runs,
        "min_secs": DEFAULT_MIN_SECS,
        "repeats": repeats,
    }
    timings = Timings()
    agent = host_agent_runner(client, device_id, space, backend, timings=timings)

    typer.echo(f"[1/4] profiling the {len(space.variants())} layer variants of {space.name}")
    for spec in job_specs(layers=space.variants(), chunk=25):
        client.create_job({**spec, "device_id": device_id, "settings": settings})
    agent()
    profile_layers = (timings.export_s, timings.measure_s)

    typer.echo(f"[2/4] measuring {n_calibrate} calibration networks end to end")
    queue_networks(client, device_id, space, space.sample(n_calibrate, seed), settings)
    agent()

    typer.echo("[3/4] fitting the predictor")
    predictor = client.request("POST", f"/v1/devices/{device_id}/predictors").json()

    typer.echo(f"[4/4] validating on {n_validate} new random architectures")
    result = validate(
        client, device_id, space, n=n_validate, seed=seed + 1, settings=settings, run_agent=agent
    )
    layer_rows = sum(1 for _ in client.iter_measurements("layers", device_id=device_id))
    network_rows = sum(1 for _ in client.iter_measurements("networks", device_id=device_id))
    device = client.request("GET", f"/v1/devices/{device_id}").json()
    metric_names = ("n", "within_5pct", "within_10pct", "mape", "rmse_ms", "kendall_tau")
    return {
        "device": device,
        "space": space.name,
        "layer_measurements": layer_rows,
        "network_measurements": network_rows,
        "profiling_seconds": {
            "layers_export": profile_layers[0],
            "layers_measure": profile_layers[1],
            "all_export": timings.export_s,
            "all_measure": timings.measure_s,
        },
        "predictor_version": predictor["version"],
        "predictor_metrics": predictor["metrics"],
        "validation": {k: result[k] for k in metric_names},
        "baselines": {
            name: {k: m[k] for k in metric_names} for name, m in result["baselines"].items()
        },
        "report": result,
    }


def _summary(report: dict[str, Any], path: Path) -> None:
    device = report["device"]
    typer.echo("")
    typer.echo(
        f"device {device['id']}: {device['name']} ({device['model']}), {device['runtime']} "
        f"{device['runtime_version']}, {device['delegate']}, {device['threads']} thread(s)"
    )
    seconds = report["profiling_seconds"]
    typer.echo(
        f"measurements: {report['layer_measurements']} layer, "
        f"{report['network_measurements']} network; export {seconds['all_export']:.0f}s, "
        f"measure {seconds['all_measure']:.0f}s, total {report['seconds_total']:.0f}s"
    )
    typer.echo(
        f"predictor v{report['predictor_version']} validated on "
        f"{report['validation']['n']} unseen architectures of {report['space']}:"
    )
    typer.echo(format_report(report["report"]))
    typer.echo(f"\nwrote {path}")


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return
