"""``hwlat jobs ...``: queue and inspect profiling jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from hwlat.cli.options import DEFAULT_SERVICE, ServiceUrl, Token, client, space_of
from hwlat.cli.targets import targets
from latency_api.schemas.enums import DeviceMetric
from latency_api.schemas.jobs import DeviceSelector, JobIn, JobOut, JobTiming, split_payloads
from models.errors import UserInputError

app = typer.Typer(help="Queue and inspect profiling jobs.", no_args_is_help=True)


@app.command("create")
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
    warmup_runs: Annotated[
        int | None, typer.Option(min=0, help="Untimed runs first (default: the agent's).")
    ] = None,
    num_runs: Annotated[
        int | None, typer.Option(min=1, help="Timed runs (default: the agent's).")
    ] = None,
    min_secs: Annotated[
        float | None,
        typer.Option(min=0, help="Time each model at least this long (default: the agent's)."),
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, help="Interleaved passes (default: the agent's).")
    ] = None,
    cooldown: Annotated[
        float | None, typer.Option(min=0, help="Seconds between models (default: the agent's).")
    ] = None,
    max_attempts: Annotated[int, typer.Option(min=1)] = 3,
    metrics: Annotated[
        list[DeviceMetric] | None,
        typer.Option(
            "--metric",
            help="Also measure this beside latency, in its own pass (memory: peak memory; "
            "energy: energy per inference); repeatable.",
        ),
    ] = None,
) -> None:
    """Queue profiling jobs (the list is split into jobs of --chunk items).

    Timing options left out are left to the agent that runs the job (its own flags).
    """
    search_space, keys, archs = targets(
        space, layer, networks, seed, lambda name: space_of(name, service, token)
    )
    where = _selector(selector)
    timing = JobTiming(
        warmup_runs=warmup_runs,
        num_runs=num_runs,
        min_secs=min_secs,
        repeats=repeats,
        cooldown_secs=cooldown,
    )
    payloads = split_payloads(
        layers=keys,
        space=search_space.name if search_space else None,
        architectures=archs,
        chunk=chunk,
        metrics=metrics or (),
    )
    if not payloads:
        raise UserInputError("nothing to profile: give --space, --layer or --networks")
    specs = [
        JobIn(
            device_id=device_id,
            selector=where,
            payload=payload,
            timing=timing,
            max_attempts=max_attempts,
        )
        for payload in payloads
    ]
    with client(service, token) as api:
        for spec in specs:
            job = api.create_job(spec)
            typer.echo(f"job {job.id}\t{job.kind}\t{job.size} items")


def _selector(pairs: list[str] | None) -> DeviceSelector | None:
    if not pairs:
        return None
    split = [p.split("=", 1) for p in pairs]
    if any(len(p) != 2 for p in split):
        raise UserInputError("--selector takes FIELD=VALUE, e.g. kind=android")
    return DeviceSelector.model_validate(dict(split))


@app.command("list")
def jobs_list(
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
    status: Annotated[str | None, typer.Option(help="queued, leased, done or failed.")] = None,
    device_id: Annotated[int | None, typer.Option(help="Only this device's jobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
) -> None:
    """List jobs, newest first."""
    with client(service, token) as api:
        for n, job in enumerate(api.iter_jobs(status=status, device_id=device_id)):
            if n == limit:
                break
            typer.echo(_line(job))


def _line(job: JobOut) -> str:
    return (
        f"{job.id}\t{job.status}\t{job.kind}\t{job.size} items\t"
        f"attempts {job.attempts}/{job.max_attempts}\t{job.error or ''}"
    )


@app.command("show")
def jobs_show(job_id: int, service: ServiceUrl = DEFAULT_SERVICE, token: Token = None) -> None:
    """Print one job as JSON."""
    with client(service, token) as api:
        typer.echo(api.get_job(job_id).model_dump_json(indent=2))
