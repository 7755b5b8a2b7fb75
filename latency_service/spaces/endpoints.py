"""Search spaces: register a spec, list and read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from latency_api.schemas.spaces import SpaceList, SpaceOut, SpaceSpecIn
from latency_service.deps import AdminToken, ReadSessionDep, ReadToken, SessionDep
from latency_service.spaces import service

router = APIRouter(tags=["spaces"])

SpaceName = Annotated[str, Path(max_length=100, description="The space's name")]


@router.post(
    "/v1/spaces",
    response_model=SpaceOut,
    status_code=201,
    responses={
        200: {"description": "Already registered with this very spec"},
        409: {"description": "The name is taken by another spec"},
        422: {"description": "The spec does not describe a buildable space; names the field"},
    },
)
def register_space(
    spec: SpaceSpecIn, response: Response, session: SessionDep, _: AdminToken
) -> SpaceOut:
    """Register a search space under its name, for good: every agent, predictor, validation
    and search can then use it. The same spec again answers 200; another spec under a taken
    name is refused (409), so stored data never mixes two specs."""
    out, created = service.register(session, spec.root)
    if not created:
        response.status_code = 200
    return out


@router.get("/v1/spaces", response_model=SpaceList)
def list_spaces(session: ReadSessionDep, _: ReadToken) -> SpaceList:
    """Built-in spaces, then registered ones by name."""
    return SpaceList(items=service.list_all(session))


@router.get("/v1/spaces/{name}", response_model=SpaceOut)
def get_space(name: SpaceName, session: ReadSessionDep, _: ReadToken) -> SpaceOut:
    """One space: its spec (what `hwlat space register` took), hash and size."""
    return service.get(session, name)
