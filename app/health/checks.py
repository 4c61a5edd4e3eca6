"""Readiness: named checks of what this replica needs to take work.

The composition root registers the checks that apply (the store under its engine's name,
Redis when replicas share one, draining); `/ready` runs them all at once, each bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Condition:
    """Something that makes the replica not ready, e.g. a store that cannot take writes."""

    value: str
    reason: str
    details: dict[str, object] = field(default_factory=dict)  # added to /ready's body


@dataclass(frozen=True, slots=True)
class Report:
    checks: dict[str, str]
    reasons: list[str]
    details: dict[str, object]

    @property
    def ready(self) -> bool:
        return not self.reasons


class Readiness:
    def __init__(self) -> None:
        self._probes: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        self._flags: list[tuple[str, Callable[[], bool], str]] = []
        self._conditions: list[tuple[str, Callable[[], Condition | None]]] = []

    def probe(self, name: str, probe: Callable[[], Awaitable[object]]) -> None:
        """`name` is "ok" when `probe()` returns in time, "unreachable" when it raises."""
        self._probes.append((name, probe))

    def flag(self, name: str, raised: Callable[[], bool], reason: str) -> None:
        """`name` is "yes" (not ready, because `reason`) while `raised()` holds, else "no"."""
        self._flags.append((name, raised, reason))

    def condition(self, name: str, current: Callable[[], Condition | None]) -> None:
        """While `current()` returns a Condition, `name` shows its value (not ready, because
        of its reason); absent otherwise."""
        self._conditions.append((name, current))

    async def report(self) -> Report:
        results = await asyncio.gather(*(self._run(probe) for _, probe in self._probes))
        checks: dict[str, str] = {}
        reasons: list[str] = []
        for (name, _), error in zip(self._probes, results, strict=True):
            checks[name] = "ok" if error is None else "unreachable"
            if error is not None:
                reasons.append(f"{name} unreachable: {error}")
        details: dict[str, object] = {}
        for name, current in self._conditions:
            found = current()
            if found is not None:
                checks[name] = found.value
                reasons.append(found.reason)
                details.update(found.details)
        for name, raised, reason in self._flags:
            on = raised()
            checks[name] = "yes" if on else "no"
            if on:
                reasons.append(reason)
        return Report(checks, reasons, details)

    @staticmethod
    async def _run(probe: Callable[[], Awaitable[object]]) -> str | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await probe()
        except Exception as exc:  # any failure to reach a dependency means "not ready"
            return type(exc).__name__
        return None
