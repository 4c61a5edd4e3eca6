"""Events from outside the service's own code, in the one shape `POST /v1/events` accepts
(`EventIn`): what clients post, and Claude Code's hook callbacks from claude_code runs."""

from __future__ import annotations

from app.events.schemas import EventIn
from app.events.service import EventBus
from app.store.rows import NewEvent


def external_event(bus: EventBus, body: EventIn) -> NewEvent:
    """`body` as an event to store (its payload encoded once)."""
    return bus.new_event(
        body.event_type,
        source=body.event_source,
        agent=body.agent,
        task_id=body.task_id,
        session_id=body.session_id,
        payload=body.event_payload(),
    )


def emit_external(bus: EventBus, body: EventIn) -> None:
    """Record `body`: stored with the writer's next group commit, then published."""
    bus.writer.write_later(external_event(bus, body), operation="events")
