"""Teardown closes every resource, newest first, whatever happened to the others."""

from __future__ import annotations

from app.core.lifecycle import Teardown


async def test_every_step_runs_even_after_a_failure() -> None:
    """A failing step (the event flush, say) is logged by name; the steps after it — the
    providers and the database — are still closed."""
    closed: list[str] = []

    async def dispose() -> None:
        closed.append("store")

    async def flush() -> None:
        closed.append("event bus")
        raise RuntimeError("flush failed")

    teardown = Teardown()
    teardown.add("store", dispose)
    teardown.add("event bus", flush)
    teardown.add("streams", lambda: closed.append("streams"))
    failed = await teardown.run()
    assert closed == ["streams", "event bus", "store"]
    assert failed == ["event bus"]
    assert await teardown.run() == []  # each step runs once
