"""Options every command that talks to the service shares, defined once."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeVar

import typer

from latency_api import HwlatClient, ServiceUnreachable
from models import SearchSpace, get_space
from models.errors import UserInputError
from models.spaces import BUILTIN, known_space

E = TypeVar("E", bound=StrEnum)

DEFAULT_SERVICE = "http://127.0.0.1:8000"

ServiceUrl = Annotated[
    str,
    typer.Option("--service", envvar="HWLAT_SERVICE_URL", help="Base URL of the latency service."),
]
Token = Annotated[
    str | None, typer.Option("--token", envvar="HWLAT_TOKEN", help="API token (Bearer).")
]
Device = Annotated[int, typer.Option("--device", help="Device id (GET /v1/devices).")]
Space = Annotated[str, typer.Option(help="Search space name (see `hwlat space list`).")]
# Every command that measures, in process or as an agent, gates by default.
GateOption = Annotated[
    bool,
    typer.Option(
        "--gate/--no-gate",
        help="Reject and re-measure windows that show interference (a slowed speed probe, a "
        "long tail, a repeat far from the others); rejected ones are stored as such.",
    ),
]


def client(service: str, token: str | None, *, agent: bool = False) -> HwlatClient:
    """Agents keep the client's long retries (about 40 s), which ride out a restart of the
    service; a person at a prompt learns within a few seconds that nothing answers."""
    return HwlatClient(service, token) if agent else HwlatClient(service, token, retries=3)


def space_of(name: str, service: str, token: str | None) -> SearchSpace:
    """A built-in space, or one registered with the service (fetched once per process)."""
    if known_space(name):
        return get_space(name)
    with client(service, token) as api:
        try:
            return api.space(name)
        except ServiceUnreachable as error:
            raise UserInputError(
                f"unknown search space {name!r} (built in: {', '.join(BUILTIN)}), and {error}, "
                "so a registered one cannot be looked up"
            ) from None


def choice(kind: type[E], value: str, option: str) -> E:
    """``value`` as a member of ``kind``, or a one-line error listing the choices (plain string
    options, so that a bad value is not click's multi-line usage screen)."""
    try:
        return kind(value)
    except ValueError:
        raise UserInputError(
            f"{option} {value!r}: choose one of {', '.join(m.value for m in kind)}"
        ) from None
