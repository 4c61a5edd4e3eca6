"""Upstream server events, as one session handles them: client frames, tool calls, usage.

Handling never waits: deltas are queued for the client, tool calls start their own tasks,
usage is priced and stored in the background. Unknown event types are ignored (upstream adds
new ones), and GA and beta names are both understood.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.providers.base import Usage
from app.realtime import protocol as p
from app.realtime.calls import Emit, ToolCalls
from app.realtime.context import SessionContext
from app.realtime.turns import Turns
from app.realtime.usage import RealtimeUsage


class Inbound:
    def __init__(
        self,
        ctx: SessionContext,
        turns: Turns,
        calls: ToolCalls,
        *,
        to_client: Callable[[dict[str, Any]], None],
        emit: Emit,
    ) -> None:
        self._ctx = ctx
        self._turns = turns
        self._calls = calls
        self._to_client = to_client
        self._emit = emit
        self.usage = Usage()
        self.cost_usd = 0.0
        self.responses = 0

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        frame = p.delta_frame(event)
        if frame is not None:
            self._to_client(frame)
        elif kind == "response.created":
            response = event.get("response")
            self._turns.created(response.get("id") if isinstance(response, dict) else None)
        elif kind == "response.output_item.added":
            self._calls.remember(event.get("item"))
        elif kind == "response.function_call_arguments.done":
            self._calls.start(event.get("call_id"), event.get("name"), event.get("arguments"))
        elif kind == "response.output_item.done":
            self._function_call(event.get("item"))
        elif kind == "response.done":
            self._response_done(event.get("response"))
        elif kind == "error":
            self._error(event.get("error"))
        elif kind == "rate_limits.updated":
            self._to_client({"type": "rate_limits", "rate_limits": event.get("rate_limits")})

    def _function_call(self, item: Any) -> None:
        if isinstance(item, dict) and item.get("type") == "function_call":
            self._calls.start(item.get("call_id"), item.get("name"), item.get("arguments"))

    def _error(self, error: Any) -> None:
        error = error if isinstance(error, dict) else {}
        self._turns.rejected(error.get("event_id"))
        self._ctx.metrics.realtime_upstream_errors.labels("error_event").inc()
        fields = {k: error.get(k) for k in ("type", "code", "message", "event_id")}
        self._emit("realtime.error", {"kind": "upstream_error", **fields})
        message = str(fields["message"] or "upstream error")
        self._to_client(
            p.error_frame(
                "upstream_error",
                message,
                source="upstream",
                upstream_type=fields["type"],
                code=fields["code"],
            )
        )

    def _response_done(self, response: Any) -> None:
        response = response if isinstance(response, dict) else {}
        for item in response.get("output") or []:  # calls no other event announced
            self._function_call(item)
        self._turns.done()
        usage = RealtimeUsage.parse(response.get("usage"))
        cost = self._ctx.account(usage)
        self.usage, self.cost_usd = self.usage + usage.total, self.cost_usd + cost
        self.responses += 1
        done = {
            "response_id": response.get("id"),
            "status": response.get("status"),
            "usage": usage.total.as_dict(),
            "cost_usd": cost,
        }
        self._emit(
            "realtime.response",
            {**done, "model": self._ctx.model, "audio_tokens": usage.audio.total_tokens},
        )
        self._to_client({"type": "response.done", **done, "session_cost_usd": self.cost_usd})
