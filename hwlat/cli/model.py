"""``hwlat fit``, ``hwlat predict``, ``hwlat validate``: the runtime model over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from device_agents.cli import DEFAULT_SERVICE, ServiceUrl, Token
from device_agents.client import ServiceClient
from device_agents.runners import DEFAULT_MIN_SECS

Device = Annotated[int, typer.Option("--device", help="Device id (see GET /v1/devices).")]
Space = Annotated[str, typer.Option(help="Search space name.")]


def fit(device: Device, service: ServiceUrl = DEFAULT_SERVICE, token: Token = None) -> None:
    """Fit a new predictor version from the device's measurements."""
    with ServiceClient(service, token) as client:
        predictor = client.request("POST", f"/v1/devices/{device}/predictors").json()
    metrics = predictor["metrics"]
    typer.echo(
        f"device {device}: predictor v{predictor['version']} "
        f"({metrics['n_layers']} layers, {metrics['n_networks']} networks)"
    )
    if "regression_cv_mape_pct" in metrics:
        typer.echo(
            f"  regression for unmeasured layers: CV MAPE "
            f"{metrics['regression_cv_mape_pct']:.2f}% on {metrics['regression_n_train']}"
        )
    for space, cal in metrics["calibration"].items():
        typer.echo(
            f"  {space}: latency = {cal['a']:.4f} * sum + {cal['b']:.4f} ms "
            f"({cal['n_networks']} networks, residual {cal['residual_rms_pct']:.2f}%)"
        )


def _architectures(
    arch: list[str] | None, file: Path | None, sample: int, seed: int, space_name: str
) -> list[list[int]]:
    from models import get_space

    rows: list[str] = list(arch or [])
    if file is not None:
        rows += [line.strip() for line in file.read_text().splitlines() if line.strip()]
    out = []
    for n, row in enumerate(rows):
        try:
            out.append([int(i) for i in row.split(",")])
        except ValueError:
            raise ValueError(
                f"architecture {n} ({row!r}) is not comma-separated integers"
            ) from None
    if sample:
        out += [[int(i) for i in a] for a in get_space(space_name).sample(sample, seed)]
    if not out:
        raise ValueError("no architectures: give --arch, --file or --sample")
    return out


def predict(
    device: Device,
    space: Space = "spnas-mobilenetv2-224",
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
    archs = _architectures(arch, file, sample, seed, space)
    with ServiceClient(service, token) as client:
        answer: dict[str, Any] = client.request(
            "POST",
            "/v1/predict",
            json={
                "device_id": device,
                "space": space,
                "architectures": archs,
            },
        ).json()
    if as_json:
        typer.echo(json.dumps(answer))
        return
    for row, ms, unc in zip(archs, answer["latency_ms"], answer["uncertainty_ms"], strict=True):
        typer.echo(f"{','.join(map(str, row))}\t{ms:.3f} ms\t± {unc:.3f}")
    for layer in answer["estimated_layers"]:
        typer.echo(
            f"estimated by regression (not measured): {layer['layer_key']} {layer['ms']:.3f} ms",
            err=True,
        )
    typer.echo(f"predictor v{answer['predictor_version']}", err=True)


def validate(
    device: Device,
    space: Space = "spnas-mobilenetv2-224",
    n: Annotated[int, typer.Option("--n", min=2, help="Random architectures to measure.")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed (use one the fit never saw).")] = 1000,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved measurements each.")] = 3,
    num_runs: Annotated[int, typer.Option(min=1)] = 50,
    min_secs: Annotated[
        float, typer.Option(min=0, help="Time each network at least this long.")
    ] = DEFAULT_MIN_SECS,
    run_host_agent: Annotated[
        bool, typer.Option(help="Measure with a host agent in this process (host devices).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the measuring jobs.")] = 3600,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Measure N random architectures end to end and report accuracy against baselines."""
    from hwlat.validate import format_report
    from hwlat.validate import validate as run
    from models import get_space

    search_space = get_space(space)
    settings = {"warmup_runs": 10, "num_runs": num_runs, "min_secs": min_secs, "repeats": repeats}
    with ServiceClient(service, token) as client:
        agent = None
        if run_host_agent:
            from hwlat.pipeline import host_agent_runner

            agent = host_agent_runner(client, device, search_space)
        report = run(
            client,
            device,
            search_space,
            n=n,
            seed=seed,
            settings=settings,
            run_agent=agent,
            timeout_s=timeout,
        )
    typer.echo(format_report(report))
