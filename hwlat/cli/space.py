"""``hwlat space``: register search spaces with the service and inspect them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hwlat.cli.options import DEFAULT_SERVICE, ServiceUrl, Token, client, space_of
from models import SearchSpace, format_architecture
from models.space_spec import load_spec
from models.spaces import BUILTIN, get_space

app = typer.Typer(help="Register and inspect search spaces.", no_args_is_help=True)

SpaceName = Annotated[
    str,
    typer.Argument(help="Search space name: built in (`hwlat space list`) or registered."),
]


@app.command("register")
def register(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The spec, YAML or JSON.")
    ],
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Register a search space spec with the service, under the name it gives (for good:
    another spec under that name is refused). Checked here first, as the service checks it."""
    spec = load_spec(path)
    space = SearchSpace(spec)  # a bad spec fails here, naming the field, before any request
    with client(service, token) as api:
        out = api.register_space(spec)
    typer.echo(
        f"{out.name}\tsha256 {out.sha256[:12]}\t{out.decisions} decisions\t"
        f"{out.variants} layer variants\t10^{out.architectures_log10:.1f} architectures"
        + ("" if space.fixed_shape else "\telastic")
    )


@app.command("list")
def list_spaces(
    remote: Annotated[
        bool, typer.Option(help="List the service's spaces (registered ones too).")
    ] = False,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """List the built-in search spaces, or with --remote every space the service knows."""
    if remote:
        with client(service, token) as api:
            rows = [
                (s.name, s.decisions, s.variants, s.architectures_log10, s.builtin)
                for s in api.list_spaces()
            ]
    else:
        rows = []
        for name in sorted(BUILTIN):
            space = get_space(name)
            rows.append(
                (name, space.num_layers, len(space.variants()), space.architectures_log10, True)
            )
    for name, decisions, variants, log10, builtin in rows:
        typer.echo(
            f"{name}\t{decisions} decisions\t{variants} variants\t10^{log10:.1f} architectures"
            + ("" if builtin else "\tregistered")
        )


@app.command("show")
def show(name: SpaceName, service: ServiceUrl = DEFAULT_SERVICE, token: Token = None) -> None:
    """Print a search space's spec as JSON (a registered one as the service stores it)."""
    typer.echo(json.dumps(space_of(name, service, token).to_dict(), indent=2))


@app.command("layers")
def layers(
    name: SpaceName,
    include_skip: Annotated[bool, typer.Option(help="Also list the skip (identity) keys.")] = False,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Print every distinct layer variant (what an agent profiles), one layer key per line."""
    for key in space_of(name, service, token).variants(include_skip=include_skip):
        typer.echo(str(key))


@app.command("sample")
def sample(
    name: SpaceName,
    n: Annotated[int, typer.Option("--n", min=0, help="How many architectures.")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same list.")] = 0,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Sample architectures uniformly; one per line as comma-separated candidate indices."""
    for arch in space_of(name, service, token).sample(n, seed):
        typer.echo(format_architecture(arch))
