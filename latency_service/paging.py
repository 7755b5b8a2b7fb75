"""Opaque cursors for paged lists: the id the next page continues from."""

from __future__ import annotations

import base64
import binascii

from latency_service.errors import InvalidInput


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    """The id in ``cursor``; None for the first page."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            f"cursor {cursor!r} is not one this service issued; pass next_cursor unchanged"
        ) from None
