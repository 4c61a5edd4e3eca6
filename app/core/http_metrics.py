"""Per-request HTTP metrics as a pure ASGI counter, keyed by route template.

The same series prometheus-fastapi-instrumentator exported (the dashboard and the alerts
query them): `http_requests_total{handler, method, status}` with the status grouped
(`2xx`), `http_request_duration_seconds{handler, method}` and the unlabelled
`http_request_duration_highr_seconds`. The handler is the matched route's template
(`/v1/tasks/{task_id}`, `none` when nothing matched), read from the scope FastAPI fills in
while routing — no second route match, no request object. Probes (`/health`, `/metrics`)
are not counted.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import Labelled, Metrics

EXCLUDED = frozenset({"/health", "/metrics"})


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._requests: Labelled[Counter] = metrics.http_requests
        self._duration: Labelled[Histogram] = metrics.http_duration
        self._highr: Histogram = metrics.http_duration_highr

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXCLUDED:
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            handler = getattr(route, "path", None) or "none"
            method = scope["method"]
            self._requests.labels(handler, method, f"{status // 100}xx").inc()
            self._duration.labels(handler, method).observe(elapsed)
            self._highr.observe(elapsed)
