"""Shapes every route shares: the error body and a cursor page."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

from latency_api.schemas.enums import ErrorCode

T = TypeVar("T")

# The stores keep ids and counts in 32-bit integer columns; the wire says so, so that a larger
# number is a 422 naming the field rather than a database error.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Int32 = Annotated[int, Field(ge=-(2**31), le=MAX_ID)]


class ErrorOut(BaseModel):
    """Every error answer: a machine-readable code and what to do about it."""

    error: ErrorCode = Field(examples=[ErrorCode.not_found])
    detail: str = Field(examples=["no device with id 7; list devices with GET /v1/devices"])


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page"
    )


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    database: str = Field(examples=["ok"])
