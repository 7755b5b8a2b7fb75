"""API tokens: only their hashes are stored; the secret is shown once, at creation."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from latency_api.schemas.enums import Scope


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "lab-agent-3", "scope": "ingest"}]}
    )

    name: str = Field(min_length=1, max_length=200)
    scope: Scope


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown this once, never stored")


class TokenList(BaseModel):
    items: list[TokenOut]
