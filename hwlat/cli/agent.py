"""``hwlat agent host|android``: profiling agents, directly or serving the job queue.

Timing flags (--warmup-runs, --num-runs, --min-secs, --repeats) are this agent's defaults: in
job mode a job's own timing wins wherever the job set it, so that one job is measured the same
way on every device; these flags fill in what the job left out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hwlat.cli.options import (
    DEFAULT_SERVICE,
    GateOption,
    ServiceUrl,
    Token,
    choice,
    client,
    space_of,
)
from hwlat.cli.targets import targets
from models.errors import UserInputError

if TYPE_CHECKING:
    from device_agents.runners import Timing

app = typer.Typer(help="Run profiling agents.", no_args_is_help=True)

WarmupRuns = Annotated[int, typer.Option(min=0, help="Untimed runs first (job default).")]
NumRuns = Annotated[int, typer.Option(min=1, help="Timed runs (job default).")]
MinSecs = Annotated[
    float, typer.Option(min=0, help="Time each model at least this long (job default).")
]
Repeats = Annotated[int, typer.Option(min=1, help="Interleaved passes (job default).")]


def _cpus(text: str | None) -> frozenset[int] | None:
    if not text:
        return None
    try:
        return frozenset(int(c) for c in text.split(","))
    except ValueError:
        raise UserInputError(
            f"--cpus {text!r}: expected comma-separated CPU numbers, e.g. 0,1"
        ) from None


def _timing(warmup_runs: int, num_runs: int, min_secs: float, repeats: int) -> Timing:
    from device_agents.runners import Timing

    return Timing(warmup_runs=warmup_runs, num_runs=num_runs, min_secs=min_secs, repeats=repeats)


@app.command("host")
def agent_host(
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
    runtime: Annotated[str, typer.Option(help="litert or onnxruntime.")] = "litert",
    threads: Annotated[int, typer.Option(min=1, help="Inference threads.")] = 1,
    xnnpack: Annotated[bool, typer.Option(help="Use LiteRT's XNNPACK delegate.")] = True,
    precision: Annotated[
        str, typer.Option(help="fp32, or int8 (models quantised by the converter).")
    ] = "fp32",
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
    warmup_runs: WarmupRuns = 10,
    num_runs: NumRuns = 50,
    min_secs: MinSecs = 0.0,
    repeats: Repeats = 1,
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
    gate: GateOption = True,
) -> None:
    """Profile on this machine: directly (--space/--layer) or by claiming jobs from the service."""
    from device_agents.host import HostBackend
    from device_agents.profiling import profile, write_results
    from device_agents.quality import gate_for
    from device_agents.worker import run_worker
    from latency_api.schemas.enums import Precision, Runtime

    if output is not None and output.suffix not in (".json", ".csv"):
        raise UserInputError(f"-o {output}: use a .json or .csv file name")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    backend = HostBackend(
        runtime=choice(Runtime, runtime, "--runtime"),
        num_threads=threads,
        use_xnnpack=xnnpack,
        precision=Precision.parse(precision),
        cpu_affinity=_cpus(cpus),
        max_busy_fraction=None if max_busy_pct >= 100 else max_busy_pct / 100,
    )
    if name:
        backend.name = name
    defaults = _timing(warmup_runs, num_runs, min_secs, repeats)
    quality = gate_for(gate)
    if space or layer:
        search_space, keys, archs = targets(
            space, layer, networks, seed, lambda name: space_of(name, service, token)
        )
        results = profile(
            backend,
            layers=keys,
            space=search_space,
            architectures=archs,
            timing=defaults,
            gate=quality,
        )
        if output is not None:
            write_results(results, output)
            typer.echo(f"wrote {len(results)} measurements to {output}")
        if upload and output is None:
            with client(service, token, agent=True) as api:
                device_id = api.register_device(backend.describe()).id
                stored = len(
                    api.upload_layers(
                        device_id, [r.layer_measurement() for r in results if r.kind == "layers"]
                    )
                )
                stored += len(
                    api.upload_networks(
                        device_id,
                        [r.network_measurement() for r in results if r.kind == "networks"],
                    )
                )
            typer.echo(f"uploaded {stored} measurements for device {device_id}")
        return
    with client(service, token, agent=True) as api:
        device_id = api.register_device(backend.describe()).id
        typer.echo(f"device {device_id}: claiming jobs from {service}")
        stats = run_worker(
            api,
            backend,
            device_id,
            f"host:{backend.name}",
            defaults,
            gate=quality,
            lease_s=lease,
            poll_s=poll,
            stop_when_idle=until_idle,
            show_progress=True,
        )
    typer.echo(
        f"jobs done {len(stats.done)}, failed {len(stats.failed)}, lost {len(stats.lost)}; "
        f"{stats.stored} measurements stored"
    )


@app.command("android")
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
    warmup_runs: WarmupRuns = 10,
    num_runs: NumRuns = 50,
    min_secs: MinSecs = 0.0,
    repeats: Repeats = 1,
    until_idle: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
    lease: Annotated[float, typer.Option(help="Job lease in seconds.")] = 300.0,
    poll: Annotated[float, typer.Option(help="Seconds between claims when idle.")] = 5.0,
    gate: GateOption = True,
    allow_charging: Annotated[
        bool,
        typer.Option(
            help="Measure energy on a phone that is charging (recorded as charging: true); "
            "by default such a job fails with what to do instead."
        ),
    ] = False,
) -> None:
    """Serve profiling jobs on Android phones over adb, one worker per phone."""
    from device_agents.adb import Adb
    from device_agents.android import AndroidBackend, ThermalLimits, discover_phones, serve_phones
    from device_agents.quality import gate_for
    from device_agents.worker import WorkerStats
    from latency_api.schemas.enums import Delegate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not benchmark_binary.is_file():
        raise FileNotFoundError(f"--benchmark-binary {benchmark_binary} is not a file")
    bus = Adb(adb)
    serials = list(serial or discover_phones(bus))
    if not serials:
        raise UserInputError("no ready phone: check `adb devices -l` (USB debugging, authorised)")
    thermal = ThermalLimits(max_cpu_c=max_cpu_c, max_battery_c=max_battery_c)
    backends = [
        AndroidBackend(
            s,
            benchmark_binary,
            adb=bus,
            delegate=choice(Delegate, delegate, "--delegate"),
            num_threads=threads,
            cpu_affinity=_cpus(cpus),
            runtime_version=runtime_version,
            thermal=thermal,
            allow_charging=allow_charging,
        )
        for s in serials
    ]
    defaults = _timing(warmup_runs, num_runs, min_secs, repeats)
    with client(service, token, agent=True) as api:
        outcomes = serve_phones(
            api,
            backends,
            defaults,
            gate=gate_for(gate),
            lease_s=lease,
            poll_s=poll,
            stop_when_idle=until_idle,
        )
    for outcome in outcomes:
        stats = outcome.stats or WorkerStats()
        state = f"stopped: {outcome.error}" if outcome.error else "idle"
        typer.echo(
            f"{outcome.serial} (device {outcome.device_id}): jobs done {len(stats.done)}, "
            f"failed {len(stats.failed)}; {stats.stored} measurements; {state}"
        )
