"""``/v1/tokens``: issue, list and revoke API tokens (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from latency_api.schemas.tokens import TokenCreated, TokenIn, TokenList, TokenOut
from latency_service.auth import service
from latency_service.auth.service import TokenCache
from latency_service.deps import AdminToken, IdPath, ReadSessionDep, SessionDep

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(spec: TokenIn, session: SessionDep, _: AdminToken) -> TokenCreated:
    """Issue a token; its secret is in this answer only (the service keeps its hash)."""
    token, secret = service.create_token(session, name=spec.name, scope=spec.scope)
    return TokenCreated.model_validate(
        {**TokenOut.model_validate(token).model_dump(), "token": secret}
    )


@router.get("", response_model=TokenList)
def list_tokens(session: ReadSessionDep, _: AdminToken) -> TokenList:
    """Every token with its scope and state; never the secrets."""
    return TokenList(items=[TokenOut.model_validate(t) for t in service.list_tokens(session)])


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: IdPath, request: Request, session: SessionDep, _: AdminToken
) -> TokenOut:
    """Revoke a token. This worker refuses it at once; every other within the token cache's
    lifetime (HWLAT_TOKEN_CACHE_S)."""
    token = service.revoke(session, token_id)
    cache: TokenCache = request.app.state.token_cache
    cache.forget(token_id)
    return TokenOut.model_validate(token)
