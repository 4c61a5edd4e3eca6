"""RealtimeService: built once per app; admits sessions, connects upstream, runs the bridge."""

from __future__ import annotations

import contextlib
import uuid

import structlog
from fastapi import WebSocket

from app.agents.toolset import OrchestratorToolset
from app.agents.usage import UsageAccounting
from app.providers.errors import ProviderError
from app.realtime import protocol as p
from app.realtime.context import SessionContext, load_instructions
from app.realtime.session import RealtimeSession
from app.realtime.upstream import PROVIDER, Upstream, open_upstream, realtime_url
from app.resilience.errors import ResilienceError
from app.state import State

log = structlog.get_logger(__name__)

MODALITIES = ("audio", "text")


class RealtimeService:
    def __init__(self, state: State, usage: UsageAccounting) -> None:
        settings = state.settings
        self._state = state
        self.url = realtime_url(settings)
        self.open_sessions = 0
        names = frozenset(self._toolset().names)
        self.ctx = SessionContext(
            settings=settings,
            metrics=state.metrics,
            bus=state.bus,
            hub=state.hub,
            manager=state.manager,
            usage=usage,
            instructions=load_instructions(settings.realtime_instructions_file),
            tool_names=names,
        )
        self.ctx.init_metrics()

    def _toolset(self) -> OrchestratorToolset:
        return OrchestratorToolset(self._state.manager, self._state.settings, caller=None)

    async def serve(self, websocket: WebSocket, modality: str) -> None:
        """Run one session on an accepted WebSocket until it ends, then close it."""
        settings = self._state.settings
        if self._state.manager.draining:
            await self._refuse(websocket, p.GOING_AWAY, "shutdown", "server shutting down")
            return
        if self.open_sessions >= settings.realtime_max_sessions:
            message = f"{settings.realtime_max_sessions} realtime sessions are open: try later"
            await self._refuse(websocket, p.TRY_AGAIN_LATER, "at_capacity", message)
            return
        self.open_sessions += 1
        try:
            upstream = await self._connect(websocket)
            if upstream is None:
                return
            session = RealtimeSession(
                self.ctx,
                websocket,
                upstream,
                self._toolset(),
                session_id="rt_" + uuid.uuid4().hex[:24],
                modality=modality,
            )
            end = await session.run()
            log.info("realtime_session_ended", session_id=session.id, outcome=end.outcome)
        finally:
            self.open_sessions -= 1

    async def _connect(self, websocket: WebSocket) -> Upstream | None:
        policy = self._state.gateway.policy_for(PROVIDER, self.ctx.model)
        try:
            return await open_upstream(self._state.settings, policy, self.url)
        except (ProviderError, ResilienceError) as exc:
            self.ctx.metrics.realtime_upstream_errors.labels("connect").inc()
            details = exc.describe() if isinstance(exc, ProviderError) else {"type": exc.reason}
            self.ctx.bus.emit(
                "realtime.error",
                source="realtime",
                payload={"kind": "connect", **details, "message": str(exc)},
            )
            log.warning("realtime_upstream_unavailable", error=str(exc))
            await self._refuse(
                websocket,
                p.UPSTREAM_UNAVAILABLE,
                "upstream_unavailable",
                f"upstream realtime unavailable: {exc}",
                error_type="upstream_unavailable",
            )
            return None

    async def _refuse(
        self,
        websocket: WebSocket,
        code: int,
        outcome: str,
        message: str,
        *,
        error_type: str | None = None,
    ) -> None:
        self.ctx.metrics.realtime_sessions.labels(outcome).inc()
        with contextlib.suppress(Exception):
            await websocket.send_json(p.error_frame(error_type or outcome, message))
            reason = p.SessionEnd(code, message, outcome).close_reason
            await websocket.close(code=code, reason=reason)
