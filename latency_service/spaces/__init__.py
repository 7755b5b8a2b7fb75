"""Search-space lookups as the service's validators and services need them."""

from __future__ import annotations

from latency_service.errors import NotFound
from models import SearchSpace, UnknownSearchSpace, get_space


def space_for_validator(name: str) -> SearchSpace:
    """For pydantic validators, which turn only ValueError into a 422 naming the field."""
    try:
        return get_space(name)
    except UnknownSearchSpace as error:
        raise ValueError(str(error)) from None


def space_or_404(name: str) -> SearchSpace:
    try:
        return get_space(name)
    except UnknownSearchSpace as error:
        raise NotFound(str(error)) from None
