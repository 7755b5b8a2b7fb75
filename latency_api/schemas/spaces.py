"""Search spaces on the wire: a spec registered with the service, and lookups for validators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from models import SearchSpace, UnknownSearchSpace, get_space
from models.space_spec import EXAMPLE, SPEC_VERSION, SpaceSpec
from models.spaces import can_resolve


def space_by_name(name: str) -> SearchSpace | None:
    """The space ``name`` for a validator (which must raise ValueError to name the field).

    None where this process cannot know it: a client holds only the spaces it fetched, and a
    registered space is checked by the service, which knows them all.
    """
    try:
        return get_space(name)
    except UnknownSearchSpace as error:
        if not can_resolve():
            return None
        raise ValueError(str(error)) from None


class SpaceSpecIn(RootModel[SpaceSpec]):
    """A search space spec (``models.space_spec``, schema version 1), what
    ``hwlat space register FILE`` sends: YAML or JSON, field by field as the dataclasses say."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [EXAMPLE], "x-schema-version": SPEC_VERSION}
    )


class SpaceOut(BaseModel):
    """A search space the service knows: its spec, hash and size."""

    name: str
    sha256: str = Field(description="Of the spec's canonical JSON; stored data records it")
    builtin: bool = Field(description="Shipped with hwlat, not registered")
    created_at: datetime | None = Field(default=None, description="When it was registered")
    description: str = ""
    decisions: int = Field(description="Entries of an architecture")
    variants: int = Field(description="Distinct layer variants (skips aside) its networks have")
    architectures_log10: float = Field(description="log10 of the number of architectures")
    fixed_shape: bool = Field(
        description="Every decision picks one layer's candidate and no layer's shape depends "
        "on another's choice (what `hwlat search spnas` needs)"
    )
    decision_names: list[str]
    spec: dict[str, Any]


class SpaceList(BaseModel):
    items: list[SpaceOut]
