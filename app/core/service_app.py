"""The service's FastAPI application, with what runs ahead of FastAPI's own stack.

Hand-written because no framework option says "these layers, without FastAPI's": FastAPI
puts its own layers (its error, telemetry and body-size middleware, then its call into
Starlette) outside every `add_middleware` layer, and at the socket they cost a few µs on
every request, a tenth of a task read (bench/README.md, run 18). So the layers every request
gets (`front`: the request envelope, CORS, the body limit, the fast lane) are set with
`wrap` and run before FastAPI, which then serves what the lane does not take.

A WebSocket path registered in `socket_paths` is handed its scope before any of them: every
frame a connection passes through stays alive as long as the connection, and for the
events stream, whose idle subscribers are the service's most numerous objects, the layers'
and FastAPI's frames were about a third of what each one cost (bench/README.md, run 9).
Request ids, access log, body limit and HTTP metrics are all about HTTP requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class ServiceApp(FastAPI):
    socket_paths: Mapping[str, ASGIApp] = MappingProxyType({})  # path -> its ASGI handler
    _front: ASGIApp | None = None

    def wrap(self, front: Callable[[ASGIApp], ASGIApp]) -> None:
        """Run every request through `front(fastapi)`: layers built around FastAPI's own
        stack, which they call for whatever they do not answer themselves."""
        self._front = front(super().__call__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            handler = self.socket_paths.get(scope["path"])
            if handler is not None:
                scope["app"] = self
                await handler(scope, receive, send)
                return
        if self._front is None or kind == "lifespan":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette sets it: the lane reads the app's state
        await self._front(scope, receive, send)
