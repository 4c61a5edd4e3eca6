"""What every HTTP provider shares: the client factory, transport errors, SSE framing.

A provider call is bounded once, by the resilience policy's attempt timeout (the task's
`Deadline`, or the per-call limit if tighter): providers add no timer of their own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from app.providers import errors as pe
from app.resilience.timeouts import Timeouts


def make_client(base_url: str, timeouts: Timeouts, max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(
            connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.pool
        ),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers={"user-agent": "big-three-agents"},
    )


@contextlib.contextmanager
def translate_transport_errors(provider: str) -> Iterator[None]:
    """Map httpx's transport failures (and our own call bound) onto the provider tree."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise pe.ProviderTimeout(f"{provider}: {type(exc).__name__}", provider=provider) from exc
    except (httpx.TransportError, httpx.StreamError) as exc:
        detail = str(exc) or type(exc).__name__
        raise pe.ConnectionFailed(f"{provider}: {detail}", provider=provider) from exc


def json_or_none(text: str) -> Any:
    """The parsed body, or None when it is not JSON (error pages from proxies often aren't)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_json(provider: str, text: str, request_id: str | None) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise pe.MalformedResponse(
            f"{provider}: response is not valid JSON", provider=provider, request_id=request_id
        ) from exc


async def iter_sse(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Yield (event, data) pairs from a text/event-stream body (WHATWG SSE framing)."""
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)
