"""Search spaces by name: the built-in ones, and those registered in this process.

The built-in spaces are spec files (``models/space_specs/*.json``) like any a lab registers.
A process learns a registered space by :func:`register_space` (the service from its database,
a client from ``GET /v1/spaces/{name}``); a name means one spec for good, so registering a
different spec under a known name is refused.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Final

from models.errors import UserInputError
from models.search_space import SearchSpace
from models.space_spec import SpaceSpec, spec_from_dict

# The seed's space: what every command, route and script takes when none is named.
DEFAULT_SPACE: Final = "spnas-mobilenetv2-224"
SPEC_DIR: Final = Path(__file__).resolve().parent / "space_specs"
BUILTIN: Final = tuple(sorted(path.stem for path in SPEC_DIR.glob("*.json")))

_registered: dict[str, SearchSpace] = {}
_lock = threading.Lock()


class UnknownSearchSpace(UserInputError, LookupError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted({*BUILTIN, *_registered}))
        super().__init__(
            f"unknown search space {name!r}; known here: {known} (register a spec with "
            "`hwlat space register FILE`, see GET /v1/spaces)"
        )
        self.name = name


class SpaceConflict(UserInputError):
    """A name already stands for another spec."""

    def __init__(self, name: str, known: str, given: str) -> None:
        super().__init__(
            f"search space {name!r} is already registered with another spec (sha256 "
            f"{known[:12]}, this one {given[:12]}); a name means one spec for good, so that "
            "stored measurements never mix two: register it under a new name"
        )
        self.name = name


@cache
def builtin_space(name: str) -> SearchSpace:
    if name not in BUILTIN:
        raise UnknownSearchSpace(name)
    return SearchSpace(spec_from_dict(json.loads((SPEC_DIR / f"{name}.json").read_text())))


def get_space(name: str) -> SearchSpace:
    if name in BUILTIN:
        return builtin_space(name)
    found = _registered.get(name)
    if found is None:
        raise UnknownSearchSpace(name)
    return found


def known_space(name: str) -> bool:
    return name in BUILTIN or name in _registered


def register_space(spec: SpaceSpec) -> SearchSpace:
    """The space of ``spec``, known by its name from now on in this process (idempotent)."""
    space = SearchSpace(spec)
    with _lock:
        known = builtin_space(spec.name) if spec.name in BUILTIN else _registered.get(spec.name)
        if known is not None:
            if known.digest != space.digest:
                raise SpaceConflict(spec.name, known.digest, space.digest)
            return known
        _registered[spec.name] = space
    return space
