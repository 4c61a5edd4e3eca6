"""Events from outside the service's own code, in the one shape `POST /v1/events` accepts
(`EventIn`): what clients post, and Claude Code's hook callbacks from claude_code runs."""

from __future__ import annotations

from app.events.schemas import Event, EventIn
from app.events.service import EventBus


def emit_external(bus: EventBus, body: EventIn) -> Event:
    """Publish `body` (stored by the bus's writer, like every event)."""
    return bus.emit(
        body.event_type,
        source=body.event_source,
        agent=body.agent,
        task_id=body.task_id,
        session_id=body.session_id,
        payload=body.event_payload(),
    )
