"""Test support shipped with the layer: a manual clock whose `sleep` advances it.

Pass `clock=fake` and `sleep=fake.sleep` to any resilience object and every backoff, open
wait and window expiry happens instantly and deterministically::

    fake = FakeClock()
    policy = ResiliencePolicy("p", clock=fake, sleep=fake.sleep)
"""

from __future__ import annotations

import asyncio


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, move time forward by it, and yield to the loop once."""
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
