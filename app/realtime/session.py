"""One realtime session: the bridge between a client WebSocket and an upstream Realtime one.

Six tasks per session, none of which can stall another:

    client reader     client messages → upstream events (awaits the bounded upstream queue:
                      a client that outruns upstream is slowed down, not buffered forever)
    client writer     the bounded client queue → the client socket
    upstream reader   upstream events → client frames (`put_nowait` only: when the client
                      queue is full the client is dropped with 4008, never waited for),
                      tool calls (each in its own task) and usage (`inbound.py`)
    upstream writer   the bounded upstream queue → the upstream socket
    responder         sends `response.create` when `Turns` says one may start
    task watcher      tasks this session started → `task.finished` frames + a model notice

The first of them to end the session decides its close code (`protocol.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Coroutine
from typing import Any

import structlog
from fastapi import WebSocket, WebSocketDisconnect

from app.realtime import protocol as p
from app.realtime.calls import ToolCalls
from app.realtime.context import SessionContext
from app.realtime.inbound import Inbound
from app.realtime.protocol import SessionEnd
from app.realtime.turns import Turns
from app.realtime.upstream import Upstream
from app.tools.toolset import Toolset

log = structlog.get_logger(__name__)

UPSTREAM_QUEUE_SIZE = 256


class RealtimeSession:
    def __init__(
        self,
        ctx: SessionContext,
        websocket: WebSocket,
        upstream: Upstream,
        toolset: Toolset,
        *,
        session_id: str,
        modality: str,
    ) -> None:
        self.id = session_id
        self._ctx = ctx
        self._ws = websocket
        self._upstream = upstream
        self._toolset = toolset
        self._modality = modality
        self._out: asyncio.Queue[str | None] = asyncio.Queue(
            ctx.settings.realtime_client_queue_size
        )
        self._up: asyncio.Queue[dict[str, Any]] = asyncio.Queue(UPSTREAM_QUEUE_SIZE)
        self._end: asyncio.Future[SessionEnd] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns = Turns()
        self._calls = ToolCalls(
            ctx,
            toolset,
            self._turns,
            to_client=self._to_client,
            send_up=self._send_up,
            spawn=self._spawn,
            emit=self._emit,
        )
        self._inbound = Inbound(
            ctx, self._turns, self._calls, to_client=self._to_client, emit=self._emit
        )
        self._event_ids = itertools.count(1)

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> SessionEnd:
        started = time.monotonic()
        settings = self._ctx.settings
        self._emit(
            "realtime.session.started", {"model": self._ctx.model, "modality": self._modality}
        )
        await self._send_up(self._ctx.session_update(self._toolset, self._modality))
        self._to_client(self._ctx.session_frame(self.id, self._toolset, self._modality))
        writer = self._spawn(self._write_client(), client=True)
        self._spawn(self._read_client(), client=True)
        for coro in (
            self._read_upstream(),
            self._write_upstream(),
            self._respond(),
            self._watch_tasks(),
            self._time_limit(),
        ):
            self._spawn(coro)
        try:
            end = await self._end
        except asyncio.CancelledError:  # the server is going away without a drain
            await self._teardown(writer, SessionEnd(p.GOING_AWAY, "server stopping", "shutdown"))
            raise
        await self._teardown(writer, end)
        self._ctx.metrics.realtime_sessions.labels(end.outcome).inc()
        self._emit(
            "realtime.session.ended",
            {
                "outcome": end.outcome,
                "close_code": end.code,
                "duration_s": round(time.monotonic() - started, 3),
                "responses": self._inbound.responses,
                "tool_calls": self._calls.count,
                "tasks_started": self._calls.tasks_started,
                "usage": self._inbound.usage.as_dict(),
                "cost_usd": self._inbound.cost_usd,
                "max_session_s": settings.realtime_max_session_s,
            },
        )
        return end

    def _finish(self, end: SessionEnd, error: dict[str, Any] | None = None) -> None:
        if self._end.done():
            return
        if error is not None:
            self._to_client(error)
            self._emit("realtime.error", {"kind": end.outcome, **error["error"]})
        self._end.set_result(end)

    async def _teardown(self, writer: asyncio.Task[None], end: SessionEnd) -> None:
        for task in self._tasks - {writer}:
            task.cancel()
        await asyncio.gather(*(self._tasks - {writer}), return_exceptions=True)
        self._calls.watcher.close()
        if end.outcome != "slow_client":  # let the client read what is queued, briefly
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._out.put(None)
                    await writer
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self._upstream.aclose()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self._ws.close(code=end.code, reason=end.close_reason)

    def _spawn(
        self, coro: Coroutine[Any, Any, None], *, client: bool = False
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro, client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None], client: bool) -> None:
        try:
            await coro
        except WebSocketDisconnect:
            self._finish(SessionEnd(p.NORMAL, "", "client_closed"))
        except Exception as exc:
            if client and isinstance(exc, RuntimeError):  # starlette: the socket is gone
                self._finish(SessionEnd(p.NORMAL, "", "client_closed"))
            else:
                self._crashed(exc)

    def _crashed(self, exc: BaseException) -> None:
        log.error("realtime_session_failed", session_id=self.id, error=repr(exc))
        self._finish(
            SessionEnd(p.INTERNAL_ERROR, "internal error", "internal_error"),
            p.error_frame("internal_error", f"the session failed: {type(exc).__name__}"),
        )

    async def _time_limit(self) -> None:
        limit = self._ctx.settings.realtime_max_session_s
        await asyncio.sleep(limit)
        message = f"session time limit reached ({limit:g}s): reconnect for a new session"
        self._finish(
            SessionEnd(p.SESSION_TIME_LIMIT, message, "time_limit"),
            p.error_frame("session_time_limit", message, reconnect=True),
        )

    # --- the client side ----------------------------------------------------------------

    def _to_client(self, frame: dict[str, Any]) -> None:
        if self._end.done():
            return
        try:
            self._out.put_nowait(json.dumps(frame))
        except asyncio.QueueFull:
            self._ctx.metrics.ws_dropped.labels("realtime", "slow_consumer").inc()
            reason = "too slow: the session was dropped; reconnect for a new session"
            self._emit("realtime.error", {"kind": "slow_client", "message": reason})
            self._end.set_result(SessionEnd(p.SLOW_CLIENT, reason, "slow_client"))

    async def _write_client(self) -> None:
        while (frame := await self._out.get()) is not None:
            await self._ws.send_text(frame)

    async def _read_client(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                self._finish(SessionEnd(p.NORMAL, "", "client_closed"))
                return
            text = message.get("text")
            if text is None:
                self._finish(
                    SessionEnd(
                        p.UNSUPPORTED_DATA, "binary frames are not supported", "protocol_error"
                    )
                )
                return
            try:
                msg = p.parse_client_message(text)
            except p.NotJSON as exc:
                self._finish(SessionEnd(p.INVALID_PAYLOAD, str(exc), "protocol_error"))
                return
            except p.InvalidMessage as exc:
                self._to_client(p.error_frame("invalid_message", str(exc)))
                continue
            await self._on_client(msg)

    async def _on_client(self, msg: p.ClientMessage) -> None:
        if isinstance(msg, p.InputText):
            content = [{"type": "input_text", "text": msg.text}]
            item = {"type": "message", "role": "user", "content": content}
            await self._send_up({"type": "conversation.item.create", "item": item})
            self._turns.want()
        elif isinstance(msg, p.InputAudio):
            await self._send_up({"type": "input_audio_buffer.append", "audio": msg.audio})
        elif isinstance(msg, p.Commit):
            await self._send_up({"type": "input_audio_buffer.commit"})
            self._turns.want()
        elif isinstance(msg, p.Cancel):
            if self._turns.interrupt():
                cancel: dict[str, Any] = {"type": "response.cancel"}
                if self._turns.response_id:
                    cancel["response_id"] = self._turns.response_id
                await self._send_up(cancel)
        elif isinstance(msg, p.Close):
            self._finish(SessionEnd(p.NORMAL, "closed by the client", "client_closed"))
        else:
            self._to_client({"type": "pong"})

    # --- the upstream side --------------------------------------------------------------

    async def _send_up(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"bt_{self.id[-8:]}_{next(self._event_ids)}")
        await self._up.put(event)

    async def _write_upstream(self) -> None:
        while True:
            event = await self._up.get()
            try:
                await self._upstream.send(event)
            except Exception:
                return  # the reader sees the close and ends the session

    async def _respond(self) -> None:
        turns = self._turns
        while True:
            await turns.changed.wait()
            turns.changed.clear()
            if turns.ready():
                event_id = f"bt_{self.id[-8:]}_{next(self._event_ids)}"
                turns.create_sent(event_id)
                await self._send_up({"type": "response.create", "event_id": event_id})

    async def _read_upstream(self) -> None:
        async for event in self._upstream.events():
            self._inbound.handle(event)
        code, why = self._upstream.close_code, self._upstream.close_reason or ""
        self._ctx.metrics.realtime_upstream_errors.labels("closed").inc()
        message = f"the upstream realtime session closed (code {code} {why}): reconnect"
        self._finish(
            SessionEnd(p.UPSTREAM_CLOSED, "upstream closed: reconnect", "upstream_closed"),
            p.error_frame("upstream_closed", message.replace("  ", " "), reconnect=True),
        )

    async def _watch_tasks(self) -> None:
        code = await self._calls.watcher.run()
        self._finish(
            SessionEnd(code, "server shutting down", "shutdown"),
            p.error_frame("shutdown", "the service is shutting down"),
        )

    def _emit(
        self, type_: str, payload: dict[str, Any], *, agent: Any = None, task_id: Any = None
    ) -> None:
        self._ctx.bus.emit(
            type_,
            source="realtime",
            session_id=self.id,
            agent=agent if isinstance(agent, str) else None,
            task_id=task_id if isinstance(task_id, str) else None,
            payload=payload,
        )
