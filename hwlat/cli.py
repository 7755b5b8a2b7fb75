"""The ``hwlat`` console script: one sub-command group per component."""

from __future__ import annotations

import sys

import httpx
import typer

from device_agents.cli import agent_app, jobs_app
from device_agents.client import ServiceError
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

# Domain errors carry a message written for the user; everything else is a bug and keeps its
# traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    LookupError,
    FileNotFoundError,
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
