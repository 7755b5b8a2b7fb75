"""``hwlat demo``: the main job end to end on this machine.

Start the service on the embedded default (SQLite), register the host as a device, profile
the space's variant set through the job queue, then measure calibration and validation networks
end to end in the same jobs, shuffled together so that a slow drift cannot tell them apart; fit
a predictor on the layers and the calibration networks only, have the service validate it on the
others (with the measurement's own noise floor beside it), print a summary with the baselines
and write ``hwlat-report.json``. Every measurement passes the agent's quality gate. Then close
the loop: a Single-Path NAS search on the fitted predictor to a target inside the space's range,
its architecture measured on the device through the job queue, target, predicted and measured
side by side.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from device_agents.host import HostBackend
from device_agents.quality import gate_for
from hwlat.demo_config import DemoConfig
from hwlat.pipeline import Timings, host_agent_runner
from hwlat.progress import progress_bar
from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from hwlat.validate import format_report, queue_networks
from latency_api import HwlatClient
from latency_api.redaction import redact_json
from latency_api.schemas.jobs import JobIn, JobTiming, split_payloads
from latency_api.schemas.predictors import FitIn
from latency_api.schemas.validations import ValidationIn, ValidationOut
from models import SearchSpace, get_space
from models.errors import UserInputError
from predictor.metrics import ACCURACY


def run_demo(
    config: DemoConfig,
    *,
    workdir: Path,
    report_path: Path,
    keep_serving: bool = False,
    port: int | None = None,
) -> dict[str, Any]:
    space = get_space(config.space)
    started = time.monotonic()
    data_dir = workdir / "data"
    # A fresh database each run: the report speaks of this run's measurements only. The
    # export cache (~/.cache/hwlat) is kept, so a second run skips the conversions.
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = hwlat_env(data_dir)
    server = ServiceProcess(env, workdir / "service.log", port=port)
    # `kill` (SIGTERM) stops the demo the way Ctrl-C does, so that its service goes down with
    # it instead of being left serving on its port; the caller's handler is put back after.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    server.start()
    try:
        token = create_token(env, "admin", name="demo")
        # A read token for people: the dashboard needs nothing more.
        dashboard_token = create_token(env, "read", name="dashboard")
        typer.echo(f"service up at {server.url} (SQLite in {data_dir}); log: {server.log_path}")
        with HwlatClient(server.url, token) as client:
            backend = HostBackend(max_busy_fraction=config.max_busy_fraction)
            report = _pipeline(client, token, backend, space, config)
        report["seconds_total"] = time.monotonic() - started
        report["service_url"] = server.url
        report["dashboard_url"] = f"{server.url}/dashboard"
        # The report is made to be shared (attached to an issue, quoted in docs), so it goes
        # through the same redaction as the benchmarks' reports: the tokens made above are
        # printed for the user below, never written into it.
        report_path.write_text(json.dumps(redact_json(report), indent=2) + "\n")
        _summary(report, report_path)
        typer.echo(f"dashboard: {report['dashboard_url']} (sign in with {dashboard_token})")
        if keep_serving:
            typer.echo(f"service kept up at {server.url} (token {token}); Ctrl-C to stop")
            _wait_forever()
    finally:
        server.close()
        signal.signal(signal.SIGTERM, previous_handler)
    return report


def _pipeline(
    client: HwlatClient, token: str, backend: HostBackend, space: SearchSpace, config: DemoConfig
) -> dict[str, Any]:
    steps = 5 if config.search else 4
    device_id = client.register_device(backend.describe()).id
    timing = JobTiming(
        warmup_runs=10, num_runs=config.num_runs, min_secs=0.0, repeats=config.repeats
    )
    # A whole network takes ~10 ms here, 50 times a layer: fewer runs per window keep the main
    # job within minutes. The noise that matters (bursts, level shifts over seconds) moves a
    # whole window, so it is the interleaved passes and the gate that deal with it, not more
    # runs inside one window. Its weights are packed when loaded, so a short warm-up suffices.
    network_timing = JobTiming(
        warmup_runs=3, num_runs=config.network_runs, min_secs=0.0, repeats=config.repeats
    )
    timings = Timings()
    gate = gate_for(config.gate)
    agent = host_agent_runner(client, device_id, backend, timings=timings, gate=gate)

    typer.echo(f"[1/{steps}] profiling the {len(space.variants())} layer variants of {space.name}")
    for payload in split_payloads(layers=space.variants(), chunk=25):
        client.create_job(JobIn(device_id=device_id, payload=payload, timing=timing))
    agent()
    profile_layers = (timings.export_s, timings.measure_s)

    calibration, validation = split_networks(
        space, config.n_calibrate, config.n_validate, config.seed
    )
    mixed = calibration + validation
    random.Random(config.seed).shuffle(mixed)
    typer.echo(
        f"[2/{steps}] measuring {len(mixed)} networks end to end ({len(calibration)} to "
        f"calibrate on, {len(validation)} to validate on, interleaved), {config.repeats} passes "
        "each"
    )
    jobs = queue_networks(client, device_id, space, mixed, network_timing)
    agent()

    typer.echo(f"[3/{steps}] fitting the predictor on the layers and the calibration networks")
    predictor = client.fit_predictor(device_id, FitIn(holdout={space.name: validation}))

    # A network whose every attempt the gate rejected (its retries spent) has no value to
    # validate against; it is counted, not guessed.
    networks = list(client.iter_network_measurements(device_id=device_id))
    accepted = {tuple(m.architecture) for m in networks if m.accepted and m.space == space.name}
    measured = [a for a in validation if tuple(a) in accepted]
    unmeasured = len(validation) - len(measured)
    typer.echo(f"[4/{steps}] validating it on the {len(measured)} other networks")
    result = client.validate(
        device_id,
        ValidationIn(
            space=space.name,
            predictor_version=predictor.version,
            architectures=measured,
            details={
                "seed": config.seed,
                "interleaved_with_calibration": True,
                "validation_networks_without_accepted_measurement": unmeasured,
            },
        ),
    )
    search = None
    if config.search:
        typer.echo(
            f"[5/{steps}] Single-Path NAS to a latency target on this predictor; the "
            "architecture found is measured on the device"
        )
        search = _search(client, token, device_id, space, config, network_timing, agent)
    device = client.get_device(device_id)
    layers = Counter(
        (m.role, m.accepted) for m in client.iter_layer_measurements(device_id=device_id)
    )
    return {
        "device": device.model_dump(mode="json"),
        "space": space.name,
        "layer_measurements": layers["layer", True] + layers["layer", False],
        "reference_measurements": layers["reference", True] + layers["reference", False],
        "drift": client.drift(device_id).model_dump(mode="json", exclude={"points"}),
        "network_measurements": len(networks),
        "measurement_quality": {
            "gate": gate is not None,
            "rejected_layer_measurements": layers["layer", False],
            "rejected_network_measurements": sum(1 for m in networks if not m.accepted),
            "remeasured": sum(
                (job.result.remeasured if job.result else 0)
                for job in client.iter_jobs(device_id=device_id)
            ),
            "network_jobs": len(jobs),
            "validation_networks_without_accepted_measurement": unmeasured,
        },
        "profiling_seconds": {
            "layers_export": profile_layers[0],
            "layers_measure": profile_layers[1],
            "all_export": timings.export_s,
            "all_measure": timings.measure_s,
        },
        "predictor_version": predictor.version,
        "predictor_metrics": predictor.metrics,
        "validation": {name: result.metrics[name] for name in ACCURACY},
        "noise_floor": result.noise_floor,
        "baselines": {
            baseline: {name: figures[name] for name in ACCURACY}
            for baseline, figures in result.baselines.items()
        },
        "report": result.model_dump(mode="json"),
        "search": search,
        "layers": {c.layer_key: c.median_ms for c in client.current_layers(device_id)},
    }


def _search(
    client: HwlatClient,
    token: str,
    device_id: int,
    space: SearchSpace,
    config: DemoConfig,
    timing: JobTiming,
    agent: Callable[[], None],
) -> dict[str, Any]:
    """Single-Path NAS on the fitted predictor, the result measured through the job queue
    with the demo's own agent and network timing; the search's report (target, predicted and
    measured side by side)."""
    # torch loads here, after the measurements: importing it earlier would only slow them.
    from nas.latency import ServiceLatencySource, device_table
    from nas.runs import Measuring, spnas_run
    from nas.spnas import SpnasConfig

    with ServiceLatencySource(client.base_url, token) as source:
        table = device_table(source, device_id, space)
        low, high = table.range_ms()
        target_ms = config.search_target_ms or round((low + high) / 2, 3)
        spnas = SpnasConfig(
            target_ms=target_ms,
            epochs=config.search_epochs,
            warmup_epochs=min(2, config.search_epochs - 1),
            resolution=config.search_resolution,
            seed=config.seed,
        )
        measuring = Measuring(
            source, settings=timing.model_dump(exclude_none=True), run_agent=agent
        )
        with progress_bar("searching") as advance:
            return spnas_run(
                source,
                device_id,
                space,
                spnas,
                measuring=measuring,
                progress=lambda step, total, _log: advance(step, total),
                table=table,
            )


def split_networks(
    space: SearchSpace, n_calibrate: int, n_validate: int, seed: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Two disjoint sets of distinct random architectures: calibration, then validation."""
    wanted = n_calibrate + n_validate
    if wanted > space.size:
        raise UserInputError(
            f"{wanted} distinct networks asked of {space.name}, which has {space.size}"
        )
    distinct: dict[tuple[int, ...], None] = {}
    draw = 0
    while len(distinct) < wanted:
        for arch in space.sample(wanted, seed + 7919 * draw):
            distinct.setdefault(tuple(int(c) for c in arch), None)
        draw += 1
    rows = [list(a) for a in list(distinct)[:wanted]]
    return rows[:n_calibrate], rows[n_calibrate:]


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
    typer.echo(format_report(ValidationOut.model_validate(report["report"])))
    floor = report["noise_floor"] or {}
    if floor.get("comparisons"):
        typer.echo(
            f"{'the measurement itself (test-retest)':<28}{100 * floor['within_5pct']:>7.1f}%"
            f"{100 * floor['within_10pct']:>7.1f}%{floor['mape']:>8.2f}"
            f"   ({floor['networks']} networks, each pass against its others)"
        )
    quality = report["measurement_quality"]
    typer.echo(
        f"quality gate: {quality['rejected_layer_measurements']} layer and "
        f"{quality['rejected_network_measurements']} network measurements rejected and taken "
        f"again ({quality['remeasured']} re-measurements)"
    )
    search = report.get("search")
    if search:
        result = search["result"]
        typer.echo(
            f"search (Single-Path NAS, {search['wall_s']:.0f}s): target "
            f"{result['target_ms']:.3f} ms, predicted {result['predicted_ms']:.3f} ms "
            f"({result['predicted_error_pct']:+.1f}%), measured {result['measured_ms']:.3f} ms "
            f"({result['measured_error_pct']:+.1f}%)"
        )
    typer.echo(f"\nwrote {path}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return
