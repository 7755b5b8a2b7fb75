"""``hwlat demo``: the main job on this machine (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwlat.cli.options import GateOption
from models import DEFAULT_SPACE


def demo(
    space: Annotated[str, typer.Option(help="Search space.")] = DEFAULT_SPACE,
    n_validate: Annotated[int, typer.Option(min=2, help="Validation architectures.")] = 200,
    n_calibrate: Annotated[int, typer.Option(min=0, help="Calibration networks.")] = 50,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved measurements each.")] = 3,
    num_runs: Annotated[int, typer.Option(min=1, help="Timed runs per layer measurement.")] = 50,
    network_runs: Annotated[
        int, typer.Option(min=1, help="Timed runs per network measurement.")
    ] = 15,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    workdir: Annotated[Path, typer.Option(help="Service data and log.")] = Path(".hwlat-demo"),
    report: Annotated[Path, typer.Option(help="Report file.")] = Path("hwlat-report.json"),
    keep_serving: Annotated[bool, typer.Option(help="Leave the service up when done.")] = False,
    port: Annotated[int | None, typer.Option(help="Service port (default: a free one).")] = None,
    max_busy_pct: Annotated[
        float,
        typer.Option(min=0, max=100, help="Wait while other processes use more CPU (100: never)."),
    ] = 30.0,
    gate: GateOption = True,
) -> None:
    """The main job on this machine: profile, fit, validate, report (hwlat-report.json)."""
    from hwlat.demo import run_demo

    run_demo(
        space_name=space,
        workdir=workdir,
        report_path=report,
        n_validate=n_validate,
        n_calibrate=n_calibrate,
        repeats=repeats,
        num_runs=num_runs,
        network_runs=network_runs,
        seed=seed,
        keep_serving=keep_serving,
        port=port,
        max_busy_fraction=None if max_busy_pct >= 100 else max_busy_pct / 100,
        gate=gate,
    )
