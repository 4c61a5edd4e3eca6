"""Wire-level faults: latency, slow drip, bodies that are not JSON, connections cut mid-body.

`WireResponse` sends a body as a list of parts, `drip_s` apart; with `cut_after=n` it sends
the headers and the first n parts, then returns without finishing the response, which makes
uvicorn close the connection: the client sees an incomplete body (httpx raises
`RemoteProtocolError`). Every wait stops early when the client goes away, so a long
scripted latency never outlives the request that asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MALFORMED_JSON = b'{"id": "fake-malformed", "choices": [{"message": '
MALFORMED_SSE = b'data: {"id": "fake-malformed", "choices": [\n\n'


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _sleep_unless(gone: asyncio.Future[None], seconds: float) -> bool:
    """Sleep `seconds`; return False early if `gone` completes (the client disconnected)."""
    if seconds <= 0:
        return not gone.done()
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    await asyncio.wait({sleeper, gone}, return_when=asyncio.FIRST_COMPLETED)
    sleeper.cancel()
    return not gone.done()


async def _cancel(task: asyncio.Future[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def pause(request: Request, seconds: float) -> bool:
    """Wait before answering; False when the client disconnected meanwhile."""
    if seconds <= 0:
        return True
    gone = asyncio.ensure_future(_until_disconnect(request.receive))
    try:
        return await _sleep_unless(gone, seconds)
    finally:
        await _cancel(gone)


class WireResponse(Response):
    """A response sent part by part, optionally slowly, optionally cut short."""

    def __init__(
        self,
        parts: list[bytes],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str = "application/json",
        drip_s: float = 0.0,
        cut_after: int | None = None,
        content_length: bool = False,
    ) -> None:
        self.parts = parts
        self.status_code = status_code
        self.media_type = media_type
        self.drip_s = drip_s
        self.cut_after = cut_after
        self.background = None
        all_headers = dict(headers or {})
        if content_length:
            all_headers["content-length"] = str(sum(len(part) for part in parts))
        self.init_headers(all_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await self._send(gone, send)
        finally:
            await _cancel(gone)

    async def _send(self, gone: asyncio.Future[None], send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        limit = len(self.parts) if self.cut_after is None else self.cut_after
        for index, part in enumerate(self.parts[:limit]):
            if index and not await _sleep_unless(gone, self.drip_s):
                return
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if self.cut_after is not None:
            return  # an unfinished response: the server drops the connection
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def chunk_body(body: bytes, parts: int) -> list[bytes]:
    """Split a body into up to `parts` slices (for drip and mid-body cuts)."""
    size = max(1, -(-len(body) // max(1, parts)))
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def malformed(*, stream: bool, headers: Mapping[str, str]) -> WireResponse:
    """HTTP 200 with a body that does not parse (truncated JSON / an SSE event of bad JSON)."""
    if stream:
        return WireResponse([MALFORMED_SSE], headers=headers, media_type="text/event-stream")
    return WireResponse([MALFORMED_JSON], headers=headers, content_length=True)
