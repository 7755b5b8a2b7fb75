"""Search spaces by name: the built-in ones, and those registered in this process.

The built-in spaces are spec files (``models/space_specs/*.json``) like any a lab registers.
A process learns a registered space by :func:`register_space` (a client from
``GET /v1/spaces/{name}``), or asks a *resolver* for a name it does not know: the service sets
one per request (:func:`resolving_spaces`) that reads its database. A name means one spec for
good, so registering a different spec under a known name is refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
# Where this context looks up a name it has not registered: the spec, or None when unknown.
SpaceResolver = Callable[[str], SpaceSpec | None]
_resolver: ContextVar[SpaceResolver | None] = ContextVar("hwlat_space_resolver", default=None)


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
    if found is not None:
        return found
    resolver = _resolver.get()
    spec = resolver(name) if resolver is not None else None
    if spec is None:
        raise UnknownSearchSpace(name)
    return register_space(spec)


def known_space(name: str) -> bool:
    """Whether ``name`` is a space this context can decode (built in, registered, resolved)."""
    try:
        get_space(name)
    except UnknownSearchSpace:
        return False
    return True


def can_resolve() -> bool:
    """Whether this context can tell a registered space from an unknown name: the service
    can (its database); a client holds only the spaces it registered or fetched."""
    return _resolver.get() is not None


@contextmanager
def resolving_spaces(resolver: SpaceResolver) -> Iterator[None]:
    """Within the block, names not registered in this process are looked up by ``resolver``."""
    token = _resolver.set(resolver)
    try:
        yield
    finally:
        _resolver.reset(token)


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
