"""``hwlat agent ...`` (run agents) and ``hwlat jobs ...`` (queue and inspect profiling jobs)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from device_agents.runners import DEFAULT_MIN_SECS

agent_app = typer.Typer(help="Run profiling agents.", no_args_is_help=True)
jobs_app = typer.Typer(help="Queue and inspect profiling jobs.", no_args_is_help=True)

ServiceUrl = Annotated[
    str,
    typer.Option("--service", envvar="HWLAT_SERVICE_URL", help="Base URL of the latency service."),
]
Token = Annotated[
    str | None, typer.Option("--token", envvar="HWLAT_TOKEN", help="API token (Bearer).")
]
DEFAULT_SERVICE = "http://127.0.0.1:8000"


def _client(service: str, token: str | None) -> Any:
    from device_agents.client import ServiceClient

    return ServiceClient(service, token)


def _cpus(text: str | None) -> frozenset[int] | None:
    if not text:
        return None
    try:
        return frozenset(int(c) for c in text.split(","))
    except ValueError:
        raise ValueError(
            f"--cpus {text!r}: expected comma-separated CPU numbers, e.g. 0,1"
        ) from None


def _targets(
    space_name: str | None, layers: list[str] | None, networks: int, seed: int
) -> tuple[Any, list[Any], list[list[int]]]:
    """The space, layer keys and architectures a command asks for."""
    from models import get_space, parse

    space = get_space(space_name) if space_name else None
    keys = [parse(k) for k in layers or []]
    if space is not None and not keys and networks == 0:
        keys = list(space.variants())
    archs: list[list[int]] = []
    if networks:
        if space is None:
            raise ValueError("--networks needs --space to sample architectures from")
        archs = [list(map(int, a)) for a in space.sample(networks, seed)]
    return space, keys, archs


@agent_app.command("host")
def agent_host(
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
    runtime: Annotated[str, typer.Option(help="litert or onnxruntime.")] = "litert",
    threads: Annotated[int, typer.Option(min=1, help="Inference threads.")] = 1,
    xnnpack: Annotated[bool, typer.Option(help="Use LiteRT's XNNPACK delegate.")] = True,
    cpus: Annotated[str | None, typer.Option(help="Pin to these CPUs, e.g. 0,1.")] = None,
    name: Annotated[str | None, typer.Option(help="Device name (default: host name).")] = None,
    space: Annotated[
        str | None, typer.Option(help="Profile this space's variant set directly (no jobs).")
    ] = None,
    layer: Annotated[
        list[str] | None, typer.Option(help="Profile this layer key directly; repeatable.")
    ] = None,
    networks: Annotated[int, typer.Option(min=0, help="Also time N sampled networks.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for --networks sampling.")] = 0,
    warmup_runs: Annotated[int, typer.Option(min=0)] = 10,
    num_runs: Annotated[int, typer.Option(min=1)] = 50,
    min_secs: Annotated[
        float, typer.Option(min=0, help="Time each model at least this long (and num_runs).")
    ] = DEFAULT_MIN_SECS,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved passes over the list.")] = 1,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Direct mode: write results (.json/.csv).")
    ] = None,
    upload: Annotated[bool, typer.Option(help="Direct mode: upload to the service.")] = True,
    until_idle: Annotated[
        bool, typer.Option(help="Job mode: stop when the queue is empty.")
    ] = False,
    lease: Annotated[float, typer.Option(help="Job lease in seconds.")] = 300.0,
    poll: Annotated[float, typer.Option(help="Seconds between claims when idle.")] = 5.0,
    max_busy_pct: Annotated[
        float,
        typer.Option(min=0, max=100, help="Wait while other processes use more CPU (100: never)."),
    ] = 30.0,
) -> None:
    """Profile on this machine: directly (--space/--layer) or by claiming jobs from the service."""
    from device_agents.host import HostBackend
    from device_agents.profiling import profile, write_results
    from device_agents.runners import RuntimeName
    from device_agents.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    backend = HostBackend(
        runtime=RuntimeName(runtime),
        num_threads=threads,
        use_xnnpack=xnnpack,
        cpu_affinity=_cpus(cpus),
        max_busy_fraction=None if max_busy_pct >= 100 else max_busy_pct / 100,
    )
    if name:
        backend.name = name
    settings = backend.settings(warmup_runs=warmup_runs, num_runs=num_runs, min_secs=min_secs)
    if space or layer:
        search_space, keys, archs = _targets(space, layer, networks, seed)
        results = profile(
            backend,
            layers=keys,
            space=search_space,
            architectures=archs,
            settings=settings,
            repeats=repeats,
        )
        if output is not None:
            write_results(results, output)
            typer.echo(f"wrote {len(results)} measurements to {output}")
        if upload and output is None:
            with _client(service, token) as client:
                device_id = client.register_device(backend.describe())
                stored = 0
                for kind in ("layers", "networks"):
                    bodies = [r.as_upload() for r in results if r.kind == kind]
                    if bodies:
                        stored += len(client.upload(kind, device_id, bodies))
            typer.echo(f"uploaded {stored} measurements for device {device_id}")
        return
    with _client(service, token) as client:
        device_id = client.register_device(backend.describe())
        typer.echo(f"device {device_id}: claiming jobs from {service}")
        stats = run_worker(
            client,
            backend,
            device_id,
            f"host:{backend.name}",
            settings,
            lease_s=lease,
            poll_s=poll,
            stop_when_idle=until_idle,
            show_progress=True,
        )
    typer.echo(
        f"jobs done {len(stats.done)}, failed {len(stats.failed)}, lost {len(stats.lost)}; "
        f"{stats.stored} measurements stored"
    )


@agent_app.command("android")
def agent_android(
    benchmark_binary: Annotated[
        Path, typer.Option(help="TFLite's benchmark_model for the phones' ABI (see README).")
    ],
    serial: Annotated[
        list[str] | None,
        typer.Option(help="Phone serial; repeatable (default: every ready phone)."),
    ] = None,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
    adb: Annotated[str, typer.Option(help="The adb executable.")] = "adb",
    threads: Annotated[int, typer.Option(min=1, help="--num_threads.")] = 1,
    delegate: Annotated[str, typer.Option(help="cpu, xnnpack, gpu or nnapi.")] = "xnnpack",
    cpus: Annotated[
        str | None, typer.Option(help="Pin to these CPUs (default: the fastest cores).")
    ] = None,
    max_cpu_c: Annotated[float, typer.Option(help="Wait while a CPU zone is hotter.")] = 50.0,
    max_battery_c: Annotated[float, typer.Option(help="Wait while the battery is hotter.")] = 40.0,
    runtime_version: Annotated[
        str | None, typer.Option(help="Version to record (default: the binary's sha256).")
    ] = None,
    until_idle: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
    lease: Annotated[float, typer.Option(help="Job lease in seconds.")] = 300.0,
    poll: Annotated[float, typer.Option(help="Seconds between claims when idle.")] = 5.0,
) -> None:
    """Serve profiling jobs on Android phones over adb, one worker per phone."""
    from device_agents.adb import Adb
    from device_agents.android import (
        AndroidBackend,
        Delegate,
        ThermalLimits,
        discover_phones,
        serve_phones,
    )
    from device_agents.worker import WorkerStats

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not benchmark_binary.is_file():
        raise FileNotFoundError(f"--benchmark-binary {benchmark_binary} is not a file")
    bus = Adb(adb)
    serials = list(serial or discover_phones(bus))
    if not serials:
        raise LookupError("no ready phone: check `adb devices -l` (USB debugging, authorised)")
    thermal = ThermalLimits(max_cpu_c=max_cpu_c, max_battery_c=max_battery_c)
    backends = [
        AndroidBackend(
            s,
            benchmark_binary,
            adb=bus,
            delegate=Delegate(delegate),
            num_threads=threads,
            cpu_affinity=_cpus(cpus),
            runtime_version=runtime_version,
            thermal=thermal,
        )
        for s in serials
    ]
    with _client(service, token) as client:
        outcomes = serve_phones(
            client, backends, lease_s=lease, poll_s=poll, stop_when_idle=until_idle
        )
    for outcome in outcomes:
        stats = outcome.stats or WorkerStats()
        state = f"stopped: {outcome.error}" if outcome.error else "idle"
        typer.echo(
            f"{outcome.serial} (device {outcome.device_id}): jobs done {len(stats.done)}, "
            f"failed {len(stats.failed)}; {stats.stored} measurements; {state}"
        )


@jobs_app.command("create")
def jobs_create(
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
    device_id: Annotated[int | None, typer.Option(help="Run on this device.")] = None,
    selector: Annotated[
        list[str] | None,
        typer.Option(help="Or on any device with FIELD=VALUE (e.g. kind=android); repeatable."),
    ] = None,
    space: Annotated[str | None, typer.Option(help="Profile this space's variant set.")] = None,
    layer: Annotated[list[str] | None, typer.Option(help="Profile this layer key.")] = None,
    networks: Annotated[int, typer.Option(min=0, help="Time N sampled networks of --space.")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    chunk: Annotated[int, typer.Option(min=1, help="Layers (or networks) per job.")] = 50,
    warmup_runs: Annotated[int, typer.Option(min=0)] = 10,
    num_runs: Annotated[int, typer.Option(min=1)] = 50,
    min_secs: Annotated[
        float, typer.Option(min=0, help="Time each model at least this long (and num_runs).")
    ] = DEFAULT_MIN_SECS,
    repeats: Annotated[int, typer.Option(min=1)] = 1,
    cooldown: Annotated[float, typer.Option(min=0, help="Seconds between models.")] = 0.0,
    max_attempts: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    """Queue profiling jobs (the list is split into jobs of --chunk items)."""
    search_space, keys, archs = _targets(space, layer, networks, seed)
    where: dict[str, Any] = {"device_id": device_id} if device_id is not None else {}
    if selector:
        pairs = [s.split("=", 1) for s in selector]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("--selector takes FIELD=VALUE, e.g. kind=android")
        where["selector"] = dict(pairs)
    settings = {
        "warmup_runs": warmup_runs,
        "num_runs": num_runs,
        "min_secs": min_secs,
        "repeats": repeats,
        "cooldown_secs": cooldown,
    }
    from device_agents.job_specs import job_specs

    specs = job_specs(layers=keys, space=search_space, architectures=archs, chunk=chunk)
    if not specs:
        raise ValueError("nothing to profile: give --space, --layer or --networks")
    with _client(service, token) as client:
        for spec in specs:
            job = client.create_job(
                {**spec, **where, "settings": settings, "max_attempts": max_attempts}
            )
            typer.echo(f"job {job['id']}\t{job['kind']}\t{_size(job)} items")


def _size(job: dict[str, Any]) -> int:
    payload = job["payload"]
    return len(payload.get("layer_keys") or payload.get("architectures") or [])


@jobs_app.command("list")
def jobs_list(
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
    status: Annotated[str | None, typer.Option(help="queued, leased, done or failed.")] = None,
) -> None:
    """List jobs, newest first."""
    with _client(service, token) as client:
        for job in client.list_jobs(status=status):
            typer.echo(
                f"{job['id']}\t{job['status']}\t{job['kind']}\t{_size(job)} items\t"
                f"attempts {job['attempts']}/{job['max_attempts']}\t{job.get('error') or ''}"
            )


@jobs_app.command("show")
def jobs_show(job_id: int, service: ServiceUrl = DEFAULT_SERVICE, token: Token = None) -> None:
    """Print one job as JSON."""
    with _client(service, token) as client:
        typer.echo(json.dumps(client.get_job(job_id), indent=2))
