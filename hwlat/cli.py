"""The ``hwlat`` console script: one sub-command group per component."""

from __future__ import annotations

import sys

import typer

from latency_service.cli import db_app, serve, token_app
from models.cli import space_app

app = typer.Typer(
    name="hwlat",
    help="Hardware latency profiling and runtime predictors for hardware-aware NAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(space_app, name="space")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.command("serve")(serve)

# Domain errors carry a message written for the user; everything else is a bug and keeps its
# traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, FileNotFoundError)


def main() -> None:
    try:
        app()
    except USER_ERRORS as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
