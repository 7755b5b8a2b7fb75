"""Search-space lookups for validators, which must raise ValueError to name the bad field."""

from __future__ import annotations

from models import SearchSpace, UnknownSearchSpace, get_space


def space_by_name(name: str) -> SearchSpace:
    try:
        return get_space(name)
    except UnknownSearchSpace as error:
        raise ValueError(str(error)) from None
