"""``hwlat space``: inspect the built-in search spaces."""

from __future__ import annotations

from typing import Annotated

import typer

from models import format_architecture
from models.spaces import BUILTIN, get_space

app = typer.Typer(help="Inspect search spaces.", no_args_is_help=True)

SpaceName = Annotated[str, typer.Argument(help="Search space name (see `hwlat space list`).")]


@app.command("list")
def list_spaces() -> None:
    """List the built-in search spaces."""
    for name in sorted(BUILTIN):
        space = get_space(name)
        typer.echo(
            f"{name}\t{space.num_layers} searchable layers\t{len(space.variants())} variants\t"
            f"{space.size:.3g} architectures"
        )


@app.command("show")
def show(name: SpaceName) -> None:
    """Print a search space definition as JSON."""
    typer.echo(get_space(name).to_json())


@app.command("layers")
def layers(
    name: SpaceName,
    include_skip: Annotated[bool, typer.Option(help="Also list the skip (identity) keys.")] = False,
) -> None:
    """Print every distinct layer variant (what an agent profiles), one layer key per line."""
    for key in get_space(name).variants(include_skip=include_skip):
        typer.echo(str(key))


@app.command("sample")
def sample(
    name: SpaceName,
    n: Annotated[int, typer.Option("--n", min=0, help="How many architectures.")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same list.")] = 0,
) -> None:
    """Sample architectures uniformly; one per line as comma-separated candidate indices."""
    for arch in get_space(name).sample(n, seed):
        typer.echo(format_architecture(arch))
