"""Bare ASGI apps for the benchmark's floors, served under the service's uvicorn settings.

    python -m bench._bare_app --kind fastapi --port 8123
    python -m bench._bare_app --kind asgi --port 8124
    python -m bench._bare_app --kind broadcast --port 8126
    python -m bench._bare_app --kind proxy --port 8127 --upstream http://127.0.0.1:8125

`serve()` builds the same `uvicorn.Config` as `app.server.run_server` (single worker, loop and
HTTP implementation left on "auto", no access log, no log config, lifespan on), so the only
difference from the service is the application itself.
"""

from __future__ import annotations

import argparse
import json

import aiohttp
import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from app.server import uvicorn_config
from bench._asgi import not_http, read_body, send_json

_OK = json.dumps({"status": "ok"}).encode()


def fastapi_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def raw_asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if await not_http(scope, receive, send):
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


def proxy_app(upstream: str) -> ASGIApp:
    """The floor of a task with a provider call: the least any service on this stack (uvicorn,
    aiohttp) does for one — each POST's body forwarded to `upstream` at the same path through
    one pooled aiohttp session, the upstream's answer returned as it came. Nothing stored, no
    events, no validation."""
    sessions: list[aiohttp.ClientSession] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if await not_http(scope, receive, send):
            return
        if scope["path"] == "/health":
            await send_json(send, _OK)
            return
        body = await read_body(receive)
        if not sessions:  # made on the running loop
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)))
        headers = {"content-type": "application/json"}
        async with sessions[0].post(upstream + scope["path"], data=body, headers=headers) as r:
            answer = await r.read()
            status = r.status
        await send_json(send, answer, status)

    return app


def serve(kind: str, host: str, port: int, upstream: str | None = None) -> None:
    apps = {"fastapi": fastapi_app, "broadcast": broadcast_app}
    if kind == "proxy":
        if upstream is None:
            raise SystemExit("--kind proxy needs --upstream")
        app: ASGIApp = proxy_app(upstream)
    else:
        app = apps[kind]() if kind in apps else raw_asgi_app
    uvicorn.Server(uvicorn_config(app, host=host, port=port)).run()  # the service's settings


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a bare app for the benchmark's floors")
    parser.add_argument(
        "--kind", choices=["fastapi", "asgi", "broadcast", "proxy"], default="fastapi"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", help="proxy: where requests go (http://host:port)")
    args = parser.parse_args()
    serve(args.kind, args.host, args.port, args.upstream)
