"""Registering search spaces and resolving names: built-in spec files first, then the table.

A name means one spec for good. Registering the same spec again answers the stored one;
another spec under a known name is refused (409), since network measurements, predictors and
validations are stored by space name and hash, and two specs under one name would mix them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_api.schemas.spaces import SpaceOut
from latency_service.errors import Conflict, InvalidInput, NotFound
from latency_service.spaces.tables import RegisteredSpace
from models import SearchSpace
from models.space_spec import SpaceSpec, SpecError, spec_from_dict
from models.spaces import BUILTIN, builtin_space, register_space


def find_spec(session: Session, name: str) -> SpaceSpec | None:
    """The registered spec of ``name``, or None (what the per-request resolver asks)."""
    row = session.scalar(select(RegisteredSpace).where(RegisteredSpace.name == name))
    return None if row is None else spec_from_dict(row.spec)


def register(session: Session, spec: SpaceSpec) -> tuple[SpaceOut, bool]:
    """(the space, whether it is new): stored once, or the one stored under its name."""
    try:
        space = SearchSpace(spec)
    except SpecError as error:
        raise InvalidInput(f"spec.{error}") from None
    if spec.name in BUILTIN:
        known = builtin_space(spec.name)
        if known.digest != space.digest:
            raise _conflict(spec.name, known.digest, space.digest, builtin=True)
        return describe(known), False
    row = session.scalar(select(RegisteredSpace).where(RegisteredSpace.name == spec.name))
    if row is None:
        row = RegisteredSpace(name=spec.name, sha256=space.digest, spec=spec.to_dict())
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            # Another request registered the name first: answer as if it had come before.
            session.rollback()
            row = session.scalar(select(RegisteredSpace).where(RegisteredSpace.name == spec.name))
            if row is None:
                raise
        else:
            register_space(spec)  # this worker knows it at once; others ask the database
            return describe(space, row), True
    if row.sha256 != space.digest:
        raise _conflict(spec.name, row.sha256, space.digest, builtin=False)
    return describe(space, row), False


def _conflict(name: str, known: str, given: str, *, builtin: bool) -> Conflict:
    what = "a built-in space" if builtin else "registered"
    return Conflict(
        f"search space {name!r} is {what} with another spec (sha256 {known[:12]}; this one "
        f"{given[:12]}); a name means one spec for good, so that stored measurements never mix "
        "two specs: register this one under a new name"
    )


def names(session: Session) -> list[str]:
    """Built-in space names, then registered ones by name."""
    registered = session.scalars(select(RegisteredSpace.name).order_by(RegisteredSpace.name))
    return [*BUILTIN, *registered]


def list_all(session: Session) -> list[SpaceOut]:
    rows: Sequence[RegisteredSpace] = session.scalars(
        select(RegisteredSpace).order_by(RegisteredSpace.name)
    ).all()
    return [describe(builtin_space(n)) for n in BUILTIN] + [
        describe(SearchSpace(spec_from_dict(r.spec)), r) for r in rows
    ]


def get(session: Session, name: str) -> SpaceOut:
    if name in BUILTIN:
        return describe(builtin_space(name))
    row = session.scalar(select(RegisteredSpace).where(RegisteredSpace.name == name))
    if row is None:
        raise NotFound(
            f"no search space {name!r}; built in: {', '.join(BUILTIN)}; register one with "
            "POST /v1/spaces (`hwlat space register FILE`)"
        )
    return describe(SearchSpace(spec_from_dict(row.spec)), row)


def describe(space: SearchSpace, row: RegisteredSpace | None = None) -> SpaceOut:
    return SpaceOut(
        name=space.name,
        sha256=space.digest,
        builtin=row is None,
        created_at=None if row is None else row.created_at,
        description=space.description,
        decisions=space.num_layers,
        variants=len(space.variants()),
        architectures_log10=space.architectures_log10,
        fixed_shape=space.fixed_shape,
        decision_names=[d.name for d in space.decisions],
        spec=space.to_dict(),
    )
