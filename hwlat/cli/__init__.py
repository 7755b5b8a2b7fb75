"""The ``hwlat`` console script: one sub-command group per component, one module per group.

Group modules import their domain code inside the commands, so that each command loads only
what it runs (``hwlat serve`` loads neither agents nor converters).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from pydantic import ValidationError

from hwlat.cli import agent, demo, export, jobs, model, profile, search, service, space
from latency_api import HwlatError
from latency_service.errors import DomainError
from models.errors import UserInputError

app = typer.Typer(
    name="hwlat",
    help="Hardware latency profiling and runtime predictors for hardware-aware NAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(space.app, name="space")
app.add_typer(export.app, name="export")
app.command("serve")(service.serve)
app.add_typer(service.db_app, name="db")
app.add_typer(service.token_app, name="token")
app.add_typer(agent.app, name="agent")
app.add_typer(jobs.app, name="jobs")
app.command("profile")(profile.profile)
app.command("fit")(model.fit)
app.command("predict")(model.predict)
app.command("validate")(model.validate)
app.add_typer(search.app, name="search")
app.command("demo")(demo.demo)

# Errors whose message is written for the user (what was wrong, how to fix it); anything else,
# a stray ValueError or KeyError included, is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserInputError,  # input checked where it is read: keys, architectures, spaces, options...
    HwlatError,  # the client's: the service refused, did not answer, or a job failed
    DomainError,  # the service's own, raised in process (db, token)
    # pydantic's verdict on options, environment settings and files read into the wire
    # schemas; it names the field.
    ValidationError,
    FileNotFoundError,  # a path the user gave
    ImportError,  # an optional extra not installed (the message says which)
)


def message(error: BaseException) -> str:
    """One line saying what went wrong."""
    if isinstance(error, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or error.title}: {e['msg']}"
            for e in error.errors()[:3]
        ]
        return "; ".join(parts)
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


def run(args: Sequence[str] | None = None) -> int:
    """Run one command (``args``, else the process's arguments); its exit status.

    What ``main`` exits with; the tests call it in process where a subprocess would prove
    nothing more.
    """
    try:
        app(args=None if args is None else list(args), prog_name="hwlat")
    except SystemExit as done:  # click ends every command, the successful ones too, this way
        if isinstance(done.code, str):  # as the interpreter does with sys.exit("message")
            typer.echo(done.code, err=True)
            return 1
        return done.code or 0
    except USER_ERRORS as error:
        typer.secho(f"error: {message(error)}", err=True, fg=typer.colors.RED)
        return 2
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
