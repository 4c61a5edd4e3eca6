"""Provider HTTP clients side by side: CPU per request against the raw-ASGI stub.

    python -m bench.bench_http [--requests 3000]

The stub runs in its own process (pinned to CPU 1 when there are two); the clients run here
(CPU 0), one at a time, in the same run: CPU time of this process per request (all threads)
and requests/s, at 1 and at 100 requests in flight, for the same POST a provider makes
(`/v1/chat/completions`, JSON body, JSON answer parsed). The pick for app/providers is made
on these numbers (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

BODY = {"model": "lat-0", "messages": [{"role": "user", "content": "bench"}]}
Post = Callable[[], Awaitable[Any]]


def cpu() -> float:
    t = os.times()
    return t.user + t.system


async def measure(post: Post, concurrency: int, requests: int) -> tuple[float, float]:
    """(CPU µs per request, requests/s) for `requests` posts, `concurrency` at a time."""
    for _ in range(50):  # warm the pool
        await post()
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await post()

    c0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    c1, t1 = cpu(), time.perf_counter()
    n = per_worker * concurrency
    return (c1 - c0) / n * 1e6, n / (t1 - t0)


async def run(url: str, requests: int) -> list[tuple[str, int, float, float]]:
    rows = []
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    timeout = httpx.Timeout(connect=5, read=120, write=30, pool=10)

    def httpx_post(client: httpx.AsyncClient) -> Post:
        async def post() -> Any:
            r = await client.post("/v1/chat/completions", json=BODY, headers={})
            return json.loads(r.text)

        return post

    async def variant(name: str, make: Callable[[], Any], post_of: Callable[[Any], Post]) -> None:
        for concurrency in (1, 100):
            client = make()
            try:
                cpu_us, rps = await measure(post_of(client), concurrency, requests)
            finally:
                await client.aclose() if hasattr(client, "aclose") else await client.close()
            rows.append((name, concurrency, cpu_us, rps))
            print(
                f"{name} c={concurrency}: {cpu_us:.0f} µs CPU/request, {rps:,.0f}/s",
                file=sys.stderr,
            )

    await variant(
        "httpx (as configured before)",
        lambda: httpx.AsyncClient(
            base_url=url, timeout=timeout, limits=limits, headers={"user-agent": "big-three-agents"}
        ),
        httpx_post,
    )
    await variant(
        "httpx tuned (trust_env off, no retries transport)",
        lambda: httpx.AsyncClient(
            base_url=url,
            timeout=timeout,
            trust_env=False,
            transport=httpx.AsyncHTTPTransport(limits=limits, trust_env=False),
            headers={"user-agent": "big-three-agents"},
        ),
        httpx_post,
    )
    from app.providers.http import make_client  # the service's client (aiohttp), as it is now
    from app.resilience.timeouts import Timeouts

    await variant(
        "app.providers.http.make_client (AiohttpClient)",
        lambda: make_client(url, Timeouts(), 100),
        httpx_post,
    )

    from httpx_aiohttp import AiohttpTransport

    await variant(
        "httpx over an aiohttp transport (httpx-aiohttp)",
        lambda: httpx.AsyncClient(
            base_url=url,
            timeout=timeout,
            trust_env=False,
            transport=AiohttpTransport(limits=limits, trust_env=False),
            headers={"user-agent": "big-three-agents"},
        ),
        httpx_post,
    )

    def aio() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=100),
            headers={"user-agent": "big-three-agents"},
        )

    def aio_post(session: aiohttp.ClientSession) -> Post:
        async def post() -> Any:
            async with session.post("/v1/chat/completions", json=BODY) as r:
                return json.loads(await r.text())

        return post

    await variant("aiohttp ClientSession", aio, aio_post)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    from bench.hotpath import pin, start_stub

    with tempfile.TemporaryDirectory() as tmp:
        stub = start_stub(Path(tmp))
        pin(os.getpid(), 0)
        try:
            rows = asyncio.run(run(stub.url, args.requests))
        finally:
            stub.stop()
    print("| client | in flight | CPU per request | requests/s |")
    print("|---|---:|---:|---:|")
    for name, concurrency, cpu_us, rps in rows:
        print(f"| {name} | {concurrency} | {cpu_us:,.0f} µs | {rps:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
