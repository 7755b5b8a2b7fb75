"""``hwlat profile``: active sampling, round after round, until a budget or an error target."""

from __future__ import annotations

from typing import Annotated

import typer

from hwlat.cli.model import layer_model_lines
from hwlat.cli.options import DEFAULT_SERVICE, Device, ServiceUrl, Space, Token, client


def profile(
    device: Device,
    space: Space,
    budget: Annotated[int, typer.Option(min=1, help="Layer variants to measure in all.")],
    until_mape: Annotated[
        float | None,
        typer.Option(
            help="Stop once the layer model expects network sums within this MAPE (percent)."
        ),
    ] = None,
    step: Annotated[int, typer.Option(min=1, help="Layer variants per round.")] = 10,
    networks: Annotated[
        int, typer.Option(min=0, help="Calibration networks to measure in the first round.")
    ] = 10,
    sample: Annotated[
        int, typer.Option(min=10, help="Random architectures the choice is judged on.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of those architectures.")] = 0,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a round's jobs (an agent runs them).")
    ] = 3600.0,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Measure what most reduces the predicted error, refit, choose again.

    Each round asks the service for a plan (POST /v1/devices/{id}/plans): the layer variants
    whose measurement most reduces the predicted error over the space's architectures, and in
    the first round calibration networks spread over its latency range. The service queues
    them as jobs, an agent serving the device measures them, and each job fits a new predictor
    version when it completes. Rounds go on until ``--budget`` layers are measured or the
    model's own estimate of its network error is below ``--until-mape``.
    """
    from hwlat.validate import wait_for_jobs
    from latency_api.schemas.plans import PlanIn

    spent = 0
    with client(service, token) as api:
        for round_ in range(1, budget + 2):
            # A plan of nothing is the model's estimate of its error as things stand.
            status = api.plan(
                device, PlanIn(space=space, layers=0, sample=sample, seed=seed, create_jobs=False)
            )
            expected = status.expected_mape_pct
            said = "unknown" if expected is None else f"{expected:.2f}%"
            typer.echo(
                f"round {round_}: {status.measured_layers} layers measured, expected network "
                f"error {said} ({status.estimated_layer_share_pct:.0f}% of layers estimated)"
            )
            if until_mape is not None and expected is not None and expected <= until_mape:
                typer.echo(f"done: expected error {said} is within --until-mape {until_mape}%")
                break
            size = min(step, budget - spent)
            if size <= 0:
                typer.echo(f"done: the budget's {budget} layers are measured")
                break
            plan = api.plan(
                device,
                PlanIn(
                    space=space,
                    layers=size,
                    networks=networks if round_ == 1 else 0,
                    sample=sample,
                    seed=seed,
                ),
            )
            if not plan.job_ids:
                typer.echo("done: every layer of the sampled architectures is measured")
                break
            typer.echo(
                f"  measuring {len(plan.layers)} layers and {len(plan.architectures)} networks "
                f"(jobs {', '.join(map(str, plan.job_ids))})"
            )
            wait_for_jobs(api, plan.job_ids, timeout_s=timeout)  # JobFailed names a failure
            spent += len(plan.layers)
        versions = api.list_predictors(device)
    if versions:
        latest = versions[-1]
        typer.echo(f"device {device}: predictor v{latest.version}")
        for line in layer_model_lines(latest.metrics):
            typer.echo(line)
