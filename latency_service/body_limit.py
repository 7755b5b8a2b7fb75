"""Refusing a request body over the size limit before it is parsed, in the contract's shape.

A declared ``Content-Length`` over the limit is answered at once, unread; a streamed (chunked)
body is counted as it arrives and refused as soon as it passes the limit, through the route's
own error handling. FastAPI's ``max_body_size`` does the same counting, but answers in plain
text whenever a route has not read the body, so it is not used.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latency_api.schemas.enums import ErrorCode
from latency_service.http_errors import body_too_large_detail, error_body


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse(
                error_body(ErrorCode.body_too_large, body_too_large_detail(limit)),
                413,
                # The unread body must not be taken for the next request on this connection.
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read: the HTTP error handler answers it.
                    raise HTTPException(413, body_too_large_detail(limit))
            return message

        await self.app(scope, counted, send)
