"""What a command asks to measure: a space's variants, explicit layer keys, sampled networks."""

from __future__ import annotations

from collections.abc import Callable

from models import LayerKey, SearchSpace, get_space, parse
from models.errors import UserInputError


def targets(
    space_name: str | None,
    layers: list[str] | None,
    networks: int,
    seed: int,
    space_of: Callable[[str], SearchSpace] = get_space,
) -> tuple[SearchSpace | None, list[LayerKey], list[list[int]]]:
    """The space, layer keys and architectures of --space / --layer / --networks;
    ``space_of`` finds a space by name (a registered one from the service)."""
    space = space_of(space_name) if space_name else None
    keys = [parse(k) for k in layers or []]
    if space is not None and not keys and networks == 0:
        keys = list(space.variants())
    archs: list[list[int]] = []
    if networks:
        if space is None:
            raise UserInputError("--networks needs --space to sample architectures from")
        archs = [[int(c) for c in a] for a in space.sample(networks, seed)]
    return space, keys, archs
