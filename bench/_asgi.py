"""What the bench's raw ASGI apps share: the lifespan handshake and a JSON answer."""

from __future__ import annotations

from starlette.types import Receive, Send


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
