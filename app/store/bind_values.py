"""The bind values of the typed writes (app/store/rows.py), one per row, the same for every
backend: keyed by the names their statements (app/store/statements.py) bind, an event's in
column order. JSON documents are bound as compact JSON text; an event's payload as the text
it was encoded to once.
"""

from __future__ import annotations

import json

from app.store.rows import (
    ArtifactsEvicted,
    NewAgent,
    NewEvent,
    NewTask,
    TaskFinished,
    UsageAdded,
)


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def event_row(seq: int, op: NewEvent) -> tuple[object, ...]:
    """An event's values in the order of the `events` columns, the order `insert_row(events)`
    binds them: built straight as a tuple, events being the most frequent write."""
    return (seq, op.ts, op.source, op.type, op.agent, op.task_id, op.session_id, op.payload_json)


def agent_values(op: NewAgent) -> dict[str, object]:
    values: dict[str, object] = op.as_stored()
    values["fallbacks"] = _json(op.fallbacks)
    values["options"] = _json(op.options)
    return values


def task_values(op: NewTask) -> dict[str, object]:
    """A queued task's row: no outcome, no claim yet."""
    return {
        "id": op.id,
        "agent_id": op.agent_id,
        "agent_name": op.agent_name,
        "state": "queued",
        "prompt": op.prompt,
        "result": None,
        "error": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "cost_usd": 0.0,
        "attempts": 0,
        "timeout_s": op.timeout_s,
        "created_at": op.created_at,
        "started_at": None,
        "finished_at": None,
        "order_key": op.order_key,
        "files_changed": None,
        "new_session": op.new_session,
        "claimed_by": None,
        "lease_expires_at": None,
        "cancel_requested": False,
    }


def finished_values(op: TaskFinished) -> dict[str, object]:
    """The task's outcome and what to add to its agent's totals."""
    return {
        "task_id": op.task_id,
        "state": op.state,
        "result": op.result,
        "error": _json(op.error),
        "input_tokens": op.input_tokens,
        "output_tokens": op.output_tokens,
        "cached_input_tokens": op.cached_input_tokens,
        "cost_usd": op.cost_usd,
        "attempts": op.attempts,
        "finished_at": op.finished_at,
        "files_changed": _json(op.files_changed),
        "agent_id": op.agent_id,
        "agent_state": op.agent_state,
    }


def usage_values(op: UsageAdded) -> dict[str, object]:
    return {
        "provider": op.provider,
        "model": op.model,
        "calls": op.calls,
        "input_tokens": op.input_tokens,
        "output_tokens": op.output_tokens,
        "cached_input_tokens": op.cached_input_tokens,
        "cost_usd": op.cost_usd,
    }


def evicted_values(op: ArtifactsEvicted) -> list[dict[str, object]]:
    """One row per evicted artifact."""
    return [{"artifact_id": artifact_id, "at": op.at} for artifact_id in op.ids]
