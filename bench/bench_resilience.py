"""Per-call overhead of the resilience policy around a no-op upstream call.

Measures, in one run and one event loop, the latency of awaiting a no-op coroutine directly
and through `ResiliencePolicy` with bulkhead + breaker + retry budget (no failures), with and
without a per-attempt bound (`asyncio.timeout`), and prints p50/p99 in microseconds plus the
ratio to the direct call. Informational only: nothing here asserts on time.

    .venv/bin/python bench/bench_resilience.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from app.resilience.breaker import BreakerConfig
from app.resilience.bulkhead import BulkheadConfig
from app.resilience.policy import AttemptRecord, ResilienceHooks, ResiliencePolicy
from app.resilience.retry import RetryPolicy


async def noop(timeout_s: float | None) -> None:
    return None


def full_policy(call_timeout_s: float | None) -> ResiliencePolicy:
    attempts: list[AttemptRecord] = []
    hooks = ResilienceHooks(on_attempt=[lambda r: attempts.clear()])  # a cheap live hook
    return ResiliencePolicy(
        "bench",
        retry=RetryPolicy(),
        breaker=BreakerConfig(),
        bulkhead=BulkheadConfig(max_concurrent=64),
        call_timeout_s=call_timeout_s,
        hooks=hooks,
    )


async def measure(call: Callable[[], Awaitable[None]], calls: int) -> list[float]:
    for _ in range(min(calls, 1000)):  # warm up
        await call()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        started = clock()
        await call()
        samples.append((clock() - started) / 1000.0)
    return samples


def percentile(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


async def main(calls: int) -> None:
    plain = full_policy(None)
    bounded = full_policy(30.0)
    cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("direct await noop()", lambda: noop(None)),
        ("policy: bulkhead+breaker+retry", lambda: plain.call(noop)),
        ("policy + 30 s attempt timeout", lambda: bounded.call(noop)),
    ]
    results = [(label, await measure(call, calls)) for label, call in cases]
    base_p50 = percentile(results[0][1], 50)
    base_p99 = percentile(results[0][1], 99)
    print(f"{calls} calls each, Python {sys.version.split()[0]}")
    print(f"{'case':34} {'p50 us':>8} {'p99 us':>8} {'p50 x':>7} {'p99 x':>7}")
    for label, samples in results:
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        print(f"{label:34} {p50:8.2f} {p99:8.2f} {p50 / base_p50:7.1f} {p99 / base_p99:7.1f}")
    overhead = percentile(results[1][1], 50) - base_p50
    print(f"policy overhead per call (p50): {overhead:.2f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().calls))
