"""Bare ASGI apps for the `/health` baseline, served under the service's uvicorn settings.

    python -m bench._bare_app --kind fastapi --port 8123
    python -m bench._bare_app --kind asgi --port 8124
    python -m bench._bare_app --kind broadcast --port 8126

`serve()` builds the same `uvicorn.Config` as `app.server.run_server` (single worker, loop and
HTTP implementation left on "auto", no access log, no log config, lifespan on), so the only
difference from the service is the application itself.
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from starlette.types import Receive, Scope, Send

from app.server import uvicorn_config
from bench._asgi import send_json, serve_lifespan

_OK = json.dumps({"status": "ok"}).encode()


def fastapi_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def raw_asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    found = scope["path"] == "/health"
    await send_json(send, _OK if found else b'{"detail":"Not Found"}', 200 if found else 404)


def broadcast_app() -> FastAPI:
    """The fan-out floor: WebSocket subscribers on `/ws`; `POST /publish` sends the request
    body as one text frame to each of them (no store, no filters, no per-subscriber queue)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    subscribers: set[WebSocket] = set()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def subscribe(websocket: WebSocket) -> None:
        await websocket.accept()
        subscribers.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            subscribers.discard(websocket)

    @app.post("/publish")
    async def publish(request: Request) -> dict[str, int]:
        frame = (await request.body()).decode()
        for websocket in list(subscribers):
            await websocket.send_text(frame)
        return {"sent": len(subscribers)}

    return app


def serve(kind: str, host: str, port: int) -> None:
    apps = {"fastapi": fastapi_app, "broadcast": broadcast_app}
    app = apps[kind]() if kind in apps else raw_asgi_app
    uvicorn.Server(uvicorn_config(app, host=host, port=port)).run()  # the service's settings


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bare /health app for the benchmark")
    parser.add_argument("--kind", choices=["fastapi", "asgi", "broadcast"], default="fastapi")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.kind, args.host, args.port)
