"""``hwlat demo``: the main job on this machine (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwlat.cli.options import GateOption
from hwlat.demo_config import DemoConfig

D = DemoConfig()


def demo(
    space: Annotated[str, typer.Option(help="Search space.")] = D.space,
    n_validate: Annotated[
        int, typer.Option(min=2, help="Validation architectures.")
    ] = D.n_validate,
    n_calibrate: Annotated[int, typer.Option(min=0, help="Calibration networks.")] = D.n_calibrate,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved measurements each.")] = D.repeats,
    num_runs: Annotated[
        int, typer.Option(min=1, help="Timed runs per layer measurement.")
    ] = D.num_runs,
    network_runs: Annotated[
        int, typer.Option(min=1, help="Timed runs per network measurement.")
    ] = D.network_runs,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = D.seed,
    workdir: Annotated[Path, typer.Option(help="Service data and log.")] = Path(".hwlat-demo"),
    report: Annotated[Path, typer.Option(help="Report file.")] = Path("hwlat-report.json"),
    keep_serving: Annotated[bool, typer.Option(help="Leave the service up when done.")] = False,
    port: Annotated[int | None, typer.Option(help="Service port (default: a free one).")] = None,
    max_busy_pct: Annotated[
        float,
        typer.Option(min=0, max=100, help="Wait while other processes use more CPU (100: never)."),
    ] = 30.0,
    gate: GateOption = D.gate,
    search: Annotated[
        bool,
        typer.Option(help="Close the loop: search to a target, measure what the search found."),
    ] = D.search,
    search_target_ms: Annotated[
        float | None,
        typer.Option(
            help="The search's latency target (default: the middle of the space's range)."
        ),
    ] = D.search_target_ms,
    search_epochs: Annotated[
        int, typer.Option(min=2, help="Epochs of the Single-Path NAS search.")
    ] = D.search_epochs,
    search_resolution: Annotated[
        int, typer.Option(min=8, max=256, help="Proxy task resolution of the search (px).")
    ] = D.search_resolution,
) -> None:
    """The main job on this machine: profile, fit, validate, then search to a latency target
    and measure the result; a summary and hwlat-report.json."""
    from hwlat.demo import run_demo

    config = DemoConfig(
        space=space,
        n_validate=n_validate,
        n_calibrate=n_calibrate,
        repeats=repeats,
        num_runs=num_runs,
        network_runs=network_runs,
        seed=seed,
        max_busy_fraction=None if max_busy_pct >= 100 else max_busy_pct / 100,
        gate=gate,
        search=search,
        search_target_ms=search_target_ms,
        search_epochs=search_epochs,
        search_resolution=search_resolution,
    )
    run_demo(config, workdir=workdir, report_path=report, keep_serving=keep_serving, port=port)
