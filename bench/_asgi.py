"""What the bench's raw ASGI apps share: the lifespan handshake, reading a request's body
and a JSON answer."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer uvicorn's lifespan messages until shutdown (nothing to start or stop)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def send_json(
    send: Send, body: bytes, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One JSON response: start (with its content-length) and body."""
    head = [*(headers or [(b"content-type", b"application/json")])]
    head.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    """The request's whole body."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def not_http(scope: Scope, receive: Receive, send: Send) -> bool:
    """True when `scope` is not an HTTP request (the app then has nothing to do); answers
    the lifespan protocol first when that is what it is."""
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
    return scope["type"] != "http"
