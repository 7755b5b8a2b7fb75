"""Counts and times every HTTP request by its route template (``/v1/jobs/{job_id}``)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latency_service.metrics.registry import REQUEST_SECONDS, REQUESTS

# Paths that matched no route are one label, so that scanners cannot grow the label set.
UNMATCHED = "unmatched"


class RequestMetrics:
    """Plain ASGI rather than BaseHTTPMiddleware: no extra task per request on the predict path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router writes the matched route into the shared scope.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = str(scope["method"])
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)
