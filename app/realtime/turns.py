"""When a realtime session may ask upstream for the next response.

Upstream refuses a `response.create` while another response is in progress, and a response
made while a tool is still running would not see that tool's output. So a response is
*wanted* (user input, tool outputs, a task-finished notice) and is *started* only when none
is in progress and no tool call is running. The session's responder waits on `changed` and
asks `ready()`.

A `response.create` that upstream rejects with an `error` naming its `event_id` never
becomes a response: `rejected()` clears it so the session cannot wedge. A client `cancel`
interrupts the response in progress; tool calls that response still emits are not run.
"""

from __future__ import annotations

import asyncio


class Turns:
    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self.active = False
        self.wanted = False
        self.interrupted = False
        self.response_id: str | None = None
        self._create_event_id: str | None = None
        self._running: set[str] = set()

    def want(self) -> None:
        self.wanted = True
        self.changed.set()

    def ready(self) -> bool:
        return self.wanted and not self.active and not self._running

    def create_sent(self, event_id: str) -> None:
        self.active, self.wanted, self.interrupted = True, False, False
        self._create_event_id = event_id

    def created(self, response_id: str | None) -> None:
        self.active = True
        self.response_id = response_id
        self._create_event_id = None

    def done(self) -> None:
        self.active, self.interrupted = False, False
        self.response_id = self._create_event_id = None
        self.changed.set()

    def rejected(self, event_id: object) -> bool:
        """True when `event_id` is our pending response.create (then it is forgotten)."""
        if event_id is None or event_id != self._create_event_id:
            return False
        self.active = False
        self._create_event_id = None
        self.changed.set()
        return True

    def interrupt(self) -> bool:
        """Drop any wanted response; True when one is in progress (send response.cancel)."""
        self.wanted = False
        if self.active:
            self.interrupted = True
        return self.active

    def tool_started(self, call_id: str) -> None:
        self._running.add(call_id)

    def tool_finished(self, call_id: str) -> None:
        self._running.discard(call_id)
        self.want()

    @property
    def running_tools(self) -> int:
        return len(self._running)
