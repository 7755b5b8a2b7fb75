"""``hwlat fit``, ``hwlat predict``, ``hwlat validate``: the runtime model over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hwlat.cli import options
from hwlat.cli.options import (
    DEFAULT_SERVICE,
    Device,
    GateOption,
    ServiceUrl,
    Space,
    Token,
    client,
)
from models import DEFAULT_SPACE
from models.errors import UserInputError

if TYPE_CHECKING:
    from models import SearchSpace


def fit(device: Device, service: ServiceUrl = DEFAULT_SERVICE, token: Token = None) -> None:
    """Fit a new predictor version from the device's measurements."""
    with client(service, token) as api:
        predictor = api.fit_predictor(device)
    metrics = predictor.metrics
    typer.echo(
        f"device {device}: predictor v{predictor.version} "
        f"({metrics['n_layers']} layers, {metrics['n_networks']} networks)"
    )
    for line in layer_model_lines(metrics):
        typer.echo(line)
    for space, cal in metrics["calibration"].items():
        verdict = " (rejected: no better than the plain sum)" if cal["rejected"] else ""
        typer.echo(
            f"  {space}: latency = {cal['a']:.4f} * sum + {cal['b']:.4f} ms "
            f"({cal['n_networks']} networks, residual {cal['residual_rms_pct']:.2f}%){verdict}"
        )


def layer_model_lines(metrics: dict[str, Any]) -> list[str]:
    """How a version's layer model did in cross-validation, and which devices it leaned on."""
    model = metrics.get("layer_model")
    if model is None:
        return []
    lines = [f"  layer model for unmeasured layers: {model['n_train']} layers of its own"]
    if model["cv_mape_pct"] is not None:
        lines[0] += (
            f", held-out MAPE {model['cv_mape_pct']:.2f}% (worst tenth "
            f"{model['cv_worst_decile_pct']:.1f}%), 90% interval held "
            f"{model['cv_coverage90_pct']:.0f}%"
        )
    for other in model["similar_devices"]:
        lines.append(
            f"    prior from {other['device']}: weight {other['weight']:.2f}, "
            f"{other['speed_ratio']:.2f}x its latency, spread {other['spread_pct']:.1f}% on "
            f"{other['shared_layers']} shared layers"
        )
    return lines


def _architectures(
    arch: list[str] | None,
    file: Path | None,
    sample: int,
    seed: int,
    space_of: Callable[[], SearchSpace],
) -> list[list[int]]:
    from models import InvalidArchitecture, parse_architecture

    rows: list[str] = list(arch or [])
    if file is not None:
        rows += [line.strip() for line in file.read_text().splitlines() if line.strip()]
    out = []
    for n, row in enumerate(rows):
        try:
            out.append(parse_architecture(row))
        except InvalidArchitecture as error:
            raise InvalidArchitecture(f"architecture {n}: {error}") from None
    if sample:
        out += [[int(i) for i in a] for a in space_of().sample(sample, seed)]
    if not out:
        raise UserInputError("no architectures: give --arch, --file or --sample")
    return out


def predict(
    device: Device,
    space: Space = DEFAULT_SPACE,
    arch: Annotated[
        list[str] | None, typer.Option(help="Candidate indices, e.g. 0,1,4,...")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="One architecture per line.")] = None,
    sample: Annotated[int, typer.Option(min=0, help="Also predict N sampled architectures.")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the service's answer.")] = False,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Predict latencies; one line per architecture: indices, ms, ± uncertainty."""
    from models import format_architecture

    archs = _architectures(
        arch, file, sample, seed, lambda: options.space_of(space, service, token)
    )
    with client(service, token) as api:
        answer = api.predict(device, space, archs)
    if as_json:
        typer.echo(answer.model_dump_json())
        return
    for row, ms, unc in zip(archs, answer.latency_ms, answer.uncertainty_ms, strict=True):
        typer.echo(f"{format_architecture(row)}\t{ms:.3f} ms\t± {unc:.3f}")
    for layer in answer.estimated_layers:
        typer.echo(
            f"estimated by the layer model (not measured): {layer.layer_key} {layer.ms:.3f} ms",
            err=True,
        )
    typer.echo(f"predictor v{answer.predictor_version}", err=True)


def validate(
    device: Device,
    space: Space = DEFAULT_SPACE,
    n: Annotated[int, typer.Option("--n", min=2, help="Random architectures to measure.")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed (use one the fit never saw).")] = 1000,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved measurements each.")] = 3,
    num_runs: Annotated[int, typer.Option(min=1)] = 50,
    min_secs: Annotated[
        float, typer.Option(min=0, help="Time each network at least this long.")
    ] = 0.0,
    run_host_agent: Annotated[
        bool, typer.Option(help="Measure with a host agent in this process (host devices).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the measuring jobs.")] = 3600,
    gate: GateOption = True,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Measure N new random architectures; the service scores the predictor on them.

    The baselines shown beside it are fitted on the same data as the predictor.
    """
    from hwlat.validate import format_report
    from hwlat.validate import validate as run
    from latency_api.schemas.jobs import JobTiming

    search_space = options.space_of(space, service, token)
    timing = JobTiming(warmup_runs=10, num_runs=num_runs, min_secs=min_secs, repeats=repeats)
    with client(service, token) as api:
        agent = None
        if run_host_agent:
            from device_agents.quality import gate_for
            from hwlat.pipeline import host_agent_runner

            agent = host_agent_runner(api, device, gate=gate_for(gate))
        report = run(
            api,
            device,
            search_space,
            n=n,
            seed=seed,
            timing=timing,
            run_agent=agent,
            timeout_s=timeout,
        )
    typer.echo(format_report(report))
