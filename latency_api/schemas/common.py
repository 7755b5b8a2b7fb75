"""Shapes every route shares: the error body and a cursor page."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class ErrorOut(BaseModel):
    """Every error answer: a machine-readable code and what to do about it."""

    error: str = Field(examples=["not_found"])
    detail: str = Field(examples=["no device with id 7; list devices with GET /v1/devices"])


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page"
    )


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    database: str = Field(examples=["ok"])
