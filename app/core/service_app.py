"""The service's FastAPI application, with WebSocket paths served ahead of it.

Hand-written because no framework option says "this WebSocket path, without the
application's middleware and router": every frame a connection passes through stays alive
as long as the connection, and for the events stream, whose idle subscribers are the
service's most numerous objects, the middleware stack's and FastAPI's frames were about a
third of what each one cost (bench/README.md, run 9). A path registered in `socket_paths`
is handed its scope (with `scope["app"]` set, so `provided()` works) before any middleware;
everything else is FastAPI's as usual. HTTP middleware has nothing to do for these paths:
request ids, access log, body limit and HTTP metrics are all about HTTP requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class ServiceApp(FastAPI):
    socket_paths: Mapping[str, ASGIApp] = MappingProxyType({})  # path -> its ASGI handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handler = self.socket_paths.get(scope["path"])
            if handler is not None:
                scope["app"] = self
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
