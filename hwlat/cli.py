"""The ``hwlat`` console script: one sub-command group per component."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from device_agents.cli import agent_app, jobs_app
from device_agents.client import ServiceError
from hwlat import model_cli
from hwlat.search_cli import search_app
from latency_service.cli import db_app, serve, token_app
from models.cli import space_app
from models.export_cli import export_app

app = typer.Typer(
    name="hwlat",
    help="Hardware latency profiling and runtime predictors for hardware-aware NAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(space_app, name="space")
app.add_typer(export_app, name="export")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.command("serve")(serve)
app.add_typer(agent_app, name="agent")
app.add_typer(jobs_app, name="jobs")
app.command("fit")(model_cli.fit)
app.command("predict")(model_cli.predict)
app.command("validate")(model_cli.validate)
app.add_typer(search_app, name="search")


@app.command("demo")
def demo(
    space: Annotated[str, typer.Option(help="Search space.")] = "spnas-mobilenetv2-224",
    n_validate: Annotated[int, typer.Option(min=2, help="Validation architectures.")] = 100,
    n_calibrate: Annotated[int, typer.Option(min=0, help="Calibration networks.")] = 20,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved measurements each.")] = 3,
    num_runs: Annotated[int, typer.Option(min=1, help="Timed runs per measurement.")] = 50,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    workdir: Annotated[Path, typer.Option(help="Service data and log.")] = Path(".hwlat-demo"),
    report: Annotated[Path, typer.Option(help="Report file.")] = Path("hwlat-report.json"),
    keep_serving: Annotated[bool, typer.Option(help="Leave the service up when done.")] = False,
    port: Annotated[int | None, typer.Option(help="Service port (default: a free one).")] = None,
    max_busy_pct: Annotated[
        float,
        typer.Option(min=0, max=100, help="Wait while other processes use more CPU (100: never)."),
    ] = 30.0,
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
        seed=seed,
        keep_serving=keep_serving,
        port=port,
        max_busy_fraction=None if max_busy_pct >= 100 else max_busy_pct / 100,
    )


# Domain errors carry a message written for the user; everything else is a bug and keeps its
# traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    LookupError,
    FileNotFoundError,
    ImportError,
    ServiceError,
    httpx.TransportError,
)


def main() -> None:
    try:
        app()
    except USER_ERRORS as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
