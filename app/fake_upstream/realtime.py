"""A fake OpenAI Realtime endpoint, `WS /v1/realtime`, scriptable and with fault injection.

It speaks the GA event names: `session.created` on connect, `session.updated` for every
`session.update`, `conversation.item.added`/`.done` for `conversation.item.create`, and on
`response.create` it plays the next scripted `RealtimeStep` (`response.created`, text /
transcript / audio deltas, function calls as `response.output_item.added` →
`response.function_call_arguments.delta`/`.done` → `response.output_item.done`, then
`response.done` with usage). `response.cancel` ends the response with status `cancelled`.

Scripts are FIFO queues keyed by a *trigger*: the text of the latest user message on the
connection (`"*"` is the fallback queue), so concurrent sessions get their own answers and a
multi-step exchange (a tool call, then the answer after its output) stays in one queue.
With nothing queued the fake answers `echo: <latest user text>`.

Control API (next to the HTTP fake's): `POST /_fake/realtime/script {"trigger", "responses"}`,
`GET /_fake/realtime/events?type=` (client events received, audio elided),
`GET /_fake/realtime/connections`, `POST /_fake/realtime/inject {"event"}` (send an event to
every open connection), `POST /_fake/realtime/drop {"code"}` (close every open connection),
`POST /_fake/realtime/reset`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field

from app.fake_upstream.records import SECRET_HEADERS, redact

DEFAULT_TRIGGER = "*"
HOLD_MAX_S = 60.0


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RealtimeToolCall(_Spec):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    call_id: str | None = None


class RealtimeError(_Spec):
    type: str = "invalid_request_error"
    code: str | None = None
    message: str = "scripted error"


class RealtimeStep(_Spec):
    """One scripted answer to a `response.create`. An empty step echoes the user."""

    text: str | None = None
    transcript: str | None = None
    audio_chunks: int = Field(default=0, ge=0, le=100_000)
    audio_chunk_bytes: int = Field(default=3200, ge=1, le=1_000_000)
    tool_calls: list[RealtimeToolCall] = Field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: RealtimeError | None = None  # answer with an `error` event and no response
    hold: bool = False  # after the first delta, wait for response.cancel (up to 60 s)
    close_code: int | None = Field(default=None, ge=1000, le=4999)  # close after 1st delta
    beta_names: bool = False  # response.text.delta / response.audio.delta (beta protocol)


class RealtimeScript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str = DEFAULT_TRIGGER
    responses: list[RealtimeStep] = Field(min_length=1)


class _Closed(Exception):
    """The scripted close happened: stop playing."""


class _Cancelled(Exception):
    """The client sent response.cancel: end the response as cancelled."""


@dataclass(eq=False)
class Connection:
    id: int
    ws: WebSocket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_user_text: str = ""
    active: asyncio.Task[None] | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.id}_{next(self.ids)}"

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self.new_id("event"))
        async with self.lock:
            await self.ws.send_text(json.dumps(event))


@dataclass
class RealtimeFake:
    scripts: dict[str, deque[RealtimeStep]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    open: dict[int, Connection] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def take(self, trigger: str) -> RealtimeStep | None:
        for key in (trigger, DEFAULT_TRIGGER):
            queue = self.scripts.get(key)
            if queue:
                return queue.popleft()
        return None

    def record(self, conn: Connection, event: dict[str, Any]) -> None:
        if isinstance(event.get("audio"), str):
            event = {**event, "audio": f"<{len(event['audio'])} base64 chars>"}
        self.events.append({"connection": conn.id, "received_at": time.time(), "event": event})

    def reset(self) -> None:
        self.scripts.clear()
        self.events.clear()
        self.connections.clear()


def _user_text(item: dict[str, Any]) -> str | None:
    if item.get("type") != "message" or item.get("role") != "user":
        return None
    parts = [p.get("text", "") for p in item.get("content", []) if isinstance(p, dict)]
    return " ".join(p for p in parts if p)


def _usage(step: RealtimeStep, output_words: int) -> dict[str, Any]:
    if step.usage is not None:
        return dict(step.usage)
    audio_out = step.audio_chunks * 10
    return {
        "total_tokens": 20 + output_words + audio_out,
        "input_tokens": 20,
        "output_tokens": output_words + audio_out,
        "input_token_details": {"cached_tokens": 0, "text_tokens": 20, "audio_tokens": 0},
        "output_token_details": {"text_tokens": output_words, "audio_tokens": audio_out},
    }


def _pieces(step: RealtimeStep) -> list[tuple[str, str]]:
    """(event type, delta) for the step's text, transcript and audio, in that order."""
    beta = step.beta_names
    kinds = {
        "text": "response.text.delta" if beta else "response.output_text.delta",
        "transcript": f"response.{'' if beta else 'output_'}audio_transcript.delta",
        "audio": "response.audio.delta" if beta else "response.output_audio.delta",
    }
    pieces: list[tuple[str, str]] = []
    for field_name in ("text", "transcript"):
        words = (getattr(step, field_name) or "").split(" ")
        if words != [""]:
            deltas = [w + " " for w in words[:-1]] + [words[-1]]
            pieces.extend((kinds[field_name], d) for d in deltas)
    for _ in range(step.audio_chunks):
        audio = base64.b64encode(os.urandom(step.audio_chunk_bytes)).decode()
        pieces.append((kinds["audio"], audio))
    return pieces


async def _deltas(conn: Connection, step: RealtimeStep, response_id: str) -> int:
    """Stream the step's deltas, honouring `close_code` and `hold` after the first one."""
    where = {
        "response_id": response_id,
        "item_id": f"item_{response_id}",
        "output_index": 0,
        "content_index": 0,
    }
    pieces = _pieces(step)
    for n, (kind, delta) in enumerate(pieces):
        if conn.cancel.is_set():
            raise _Cancelled
        await conn.send({"type": kind, **where, "delta": delta})
        if n == 0 and step.close_code is not None:
            await conn.ws.close(code=step.close_code, reason="scripted close")
            raise _Closed
        if n == 0 and step.hold:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOLD_MAX_S):
                    await conn.cancel.wait()
    if conn.cancel.is_set():
        raise _Cancelled
    return sum(1 for kind, _ in pieces if not kind.endswith("audio.delta"))


async def _function_call(
    conn: Connection, response_id: str, index: int, call: RealtimeToolCall
) -> dict[str, Any]:
    args = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    call_id = call.call_id or conn.new_id("call")
    item: dict[str, Any] = {
        "id": conn.new_id("item"),
        "type": "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": call.name,
        "arguments": "",
    }
    where = {"response_id": response_id, "output_index": index, "call_id": call_id}
    await conn.send({"type": "response.output_item.added", **where, "item": dict(item)})
    half = len(args) // 2
    for piece in (args[:half], args[half:]):
        await conn.send(
            {
                "type": "response.function_call_arguments.delta",
                **where,
                "item_id": item["id"],
                "delta": piece,
            }
        )
    await conn.send(
        {
            "type": "response.function_call_arguments.done",
            **where,
            "item_id": item["id"],
            "name": call.name,
            "arguments": args,
        }
    )
    item.update(status="completed", arguments=args)
    await conn.send({"type": "response.output_item.done", **where, "item": item})
    return item


async def _play(conn: Connection, step: RealtimeStep, create_event_id: str | None) -> None:
    if step.error is not None:
        error = {**step.error.model_dump(), "event_id": create_event_id}
        await conn.send({"type": "error", "error": error})
        return
    response_id = conn.new_id("resp")
    await conn.send(
        {
            "type": "response.created",
            "response": {"id": response_id, "status": "in_progress", "output": []},
        }
    )
    output: list[dict[str, Any]] = []
    status, words = "completed", 0
    try:
        words = await _deltas(conn, step, response_id)
        for index, call in enumerate(step.tool_calls):
            output.append(await _function_call(conn, response_id, index, call))
    except _Closed:
        return
    except _Cancelled:
        status = "cancelled"
    response = {"id": response_id, "status": status, "output": output, "usage": _usage(step, words)}
    await conn.send({"type": "response.done", "response": response})


async def _handle(fake: RealtimeFake, conn: Connection, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "session.update":
        session = {
            "id": f"sess_{conn.id}",
            "object": "realtime.session",
            **(event.get("session") or {}),
        }
        await conn.send({"type": "session.updated", "session": session})
    elif kind == "conversation.item.create":
        item = {"id": conn.new_id("item"), **(event.get("item") or {})}
        text = _user_text(item)
        if text is not None:
            conn.last_user_text = text
        for done in ("conversation.item.added", "conversation.item.done"):
            await conn.send({"type": done, "item": item})
    elif kind == "input_audio_buffer.append":
        pass
    elif kind in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
        past = "committed" if kind.endswith("commit") else "cleared"
        await conn.send({"type": f"input_audio_buffer.{past}"})
    elif kind == "response.create":
        if conn.active is not None and not conn.active.done():
            await _error(
                conn,
                "conversation_already_has_active_response",
                "Conversation already has an active response",
                event,
            )
            return
        echo = f"echo: {conn.last_user_text}" if conn.last_user_text else "ok"
        step = fake.take(conn.last_user_text) or RealtimeStep(text=echo)
        conn.cancel = asyncio.Event()
        conn.active = asyncio.create_task(_play(conn, step, event.get("event_id")))
    elif kind == "response.cancel":
        if conn.active is None or conn.active.done():
            await _error(conn, "response_cancel_not_active", "No active response", event)
        else:
            conn.cancel.set()
    else:
        await _error(conn, "unknown_event", f"Unknown event type: {kind!r}", event)


async def _error(conn: Connection, code: str, message: str, event: dict[str, Any]) -> None:
    await conn.send(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "event_id": event.get("event_id"),
            },
        }
    )


async def _serve(fake: RealtimeFake, ws: WebSocket) -> None:
    await ws.accept()
    conn = Connection(next(fake.counter), ws)
    fake.open[conn.id] = conn
    fake.connections.append(
        {
            "id": conn.id,
            "path": ws.url.path,
            "query": dict(ws.query_params),
            "headers": redact(dict(ws.headers), SECRET_HEADERS),
        }
    )
    model = ws.query_params.get("model", "gpt-realtime")
    try:
        await conn.send(
            {
                "type": "session.created",
                "session": {
                    "id": f"sess_{conn.id}",
                    "object": "realtime.session",
                    "type": "realtime",
                    "model": model,
                    "expires_at": int(time.time()) + 3600,
                },
            }
        )
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                event = json.loads(message.get("text") or "")
                assert isinstance(event, dict)
            except (ValueError, AssertionError):
                await _error(conn, "invalid_json", "Events must be JSON objects", {})
                continue
            fake.record(conn, event)
            await _handle(fake, conn, event)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        fake.open.pop(conn.id, None)
        if conn.active is not None:
            conn.active.cancel()
            with contextlib.suppress(BaseException):
                await conn.active


def realtime_router() -> APIRouter:
    """`WS /v1/realtime` and its control API, over one fresh `RealtimeFake`."""
    fake = RealtimeFake()
    router = APIRouter()

    @router.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        await _serve(fake, websocket)

    @router.post("/_fake/realtime/script")
    async def script(body: RealtimeScript) -> dict[str, Any]:
        queue = fake.scripts.setdefault(body.trigger, deque())
        queue.extend(body.responses)
        return {"trigger": body.trigger, "queued": len(queue)}

    @router.get("/_fake/realtime/events")
    async def events(type: str | None = None) -> dict[str, Any]:
        items = [e for e in fake.events if type is None or e["event"].get("type") == type]
        return {"events": items, "count": len(items)}

    @router.get("/_fake/realtime/connections")
    async def connections() -> dict[str, Any]:
        return {"connections": fake.connections, "open": sorted(fake.open)}

    @router.post("/_fake/realtime/inject")
    async def inject(body: dict[str, Any]) -> dict[str, int]:
        for conn in list(fake.open.values()):
            await conn.send(dict(body["event"]))
        return {"sent": len(fake.open)}

    @router.post("/_fake/realtime/drop")
    async def drop(body: dict[str, Any]) -> dict[str, int]:
        closing = list(fake.open.values())
        for conn in closing:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=int(body.get("code", 1011)), reason="scripted drop")
        return {"closed": len(closing)}

    @router.post("/_fake/realtime/reset")
    async def reset() -> dict[str, str]:
        fake.reset()
        return {"status": "ok"}

    return router
