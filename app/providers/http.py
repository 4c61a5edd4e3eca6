"""What every HTTP provider shares: the client, transport errors, SSE framing.

Providers speak to `HttpClient`: the few httpx-shaped calls they make (`post`, `stream`,
`aclose`; replies with `status_code`, case-insensitive `headers`, `text`, `aread()`,
`aiter_lines()`). The service's client is `AiohttpClient`, picked on numbers measured in
one run (bench/bench_http.py, bench/README.md: aiohttp's pool costs a fraction of httpx's
CPU per request, most at 100 requests in flight); an `httpx.AsyncClient` fits the same
protocol, which is how the provider unit tests drive them through `httpx.MockTransport`.
Transport failures of either library become the provider error tree here, once.

A provider call is bounded once, by the resilience policy's attempt timeout (the task's
`Deadline`, or the per-call limit if tighter): providers add no timer of their own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
import orjson

from app.providers import errors as pe
from app.providers.aiohttp_eager import install as install_eager_body_writer
from app.resilience.timeouts import Timeouts

USER_AGENT = "big-three-agents"


class HttpReply(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...


class HttpStream(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    async def aread(self) -> bytes: ...
    def aiter_lines(self) -> AsyncIterator[str]: ...


class HttpClient(Protocol):
    async def post(self, url: str, *, json: Any, headers: Mapping[str, str]) -> HttpReply: ...

    def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> contextlib.AbstractAsyncContextManager[HttpStream]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Reply:
    status_code: int
    headers: Mapping[str, str]
    text: str


class _Stream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def aread(self) -> bytes:
        return await self._response.read()

    async def aiter_lines(self) -> AsyncIterator[str]:
        async for line in self._response.content:
            yield line.decode("utf-8", errors="replace").rstrip("\r\n")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class AiohttpClient:
    """aiohttp's pooled client behind `HttpClient`. The session is made on first use, on
    the running loop. Timeouts: `connect` covers waiting for a pooled connection plus the
    TCP connect (aiohttp has no separate pool bound), `read` each socket read; the call as a
    whole is bounded by the resilience policy."""

    def __init__(self, base_url: str, timeouts: Timeouts, max_connections: int) -> None:
        self._base = base_url.rstrip("/")
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return self._base

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            install_eager_body_writer()
            t = self._timeouts
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=t.pool + t.connect,
                    sock_connect=t.connect,
                    sock_read=t.read,
                ),
                headers={"user-agent": USER_AGENT},
                json_serialize=_dumps,
                auto_decompress=True,
            )
        return self._session

    async def post(self, url: str, *, json: Any, headers: Mapping[str, str]) -> HttpReply:
        async with self._open().post(self._base + url, json=json, headers=headers) as r:
            body = await r.read()
            return _Reply(r.status, r.headers, body.decode("utf-8", errors="replace"))

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[HttpStream]:
        request = self._open().request(
            method, self._base + url, json=json, headers=headers, params=params
        )
        async with request as response:
            yield _Stream(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_client(base_url: str, timeouts: Timeouts, max_connections: int) -> HttpClient:
    return AiohttpClient(base_url, timeouts, max_connections)


@contextlib.contextmanager
def translate_transport_errors(provider: str) -> Iterator[None]:
    """Map the HTTP libraries' transport failures onto the provider tree. (The policy's
    attempt bound cancels the call instead, and names it itself.)"""
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as exc:  # aiohttp's are TimeoutErrors
        raise pe.ProviderTimeout(f"{provider}: {type(exc).__name__}", provider=provider) from exc
    except (httpx.TransportError, httpx.StreamError, aiohttp.ClientError) as exc:
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


async def iter_sse(response: HttpStream) -> AsyncIterator[tuple[str | None, str]]:
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
