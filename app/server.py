"""Run the app under uvicorn with a graceful drain on SIGTERM/SIGINT.

uvicorn's own shutdown closes the listening socket and WebSockets (code 1012) first and runs
the lifespan last, so `/ready` could never report draining. Here the first signal instead
starts a drain while the server keeps serving: `/ready` and new tasks answer 503, running
tasks get `drain_grace_s` to finish, the rest are marked `interrupted`, event streams close
with 1001 — and only then does uvicorn shut down. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

import structlog
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from app.core.config import Settings
from app.core.logging import configure_logging
from app.events.hub import GOING_AWAY
from app.http_protocol import OneWriteHttpProtocol
from app.main import create_app
from app.state import State
from app.ws_protocol import PromptCloseProtocol

log = structlog.get_logger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Future[None] | None = None
        self._draining = False

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state: State | None = getattr(self._app.state, "bigthree", None)
        if self._draining or state is None or self._loop is None:
            self.should_exit = True  # second signal, or not started yet: stop now
            return
        self._draining = True
        # signal handlers run between bytecodes: hand the work to the loop, waking it up
        self._loop.call_soon_threadsafe(self._start_drain, state, signal.Signals(sig).name)

    def _start_drain(self, state: State, signal_name: str) -> None:
        log.info("drain_requested", signal=signal_name, grace_s=self._grace_s)
        self._drain = asyncio.ensure_future(self._drain_then_exit(state))

    async def _drain_then_exit(self, state: State) -> None:
        try:
            await state.manager.drain(self._grace_s)
            await state.bus.flush(within_s=10.0)  # stored events reach subscribers first
            state.hub.close_all(GOING_AWAY)
        except Exception:
            log.exception("drain_failed")
        finally:
            self.should_exit = True


def uvicorn_config(
    app: ASGIApp, *, host: str, port: int, ws_compression: bool = False
) -> uvicorn.Config:
    """The uvicorn settings the service runs under (the benchmark's bare apps reuse them).

    A response's head and body leave in one write (`OneWriteHttpProtocol`). WebSocket
    compression (permessage-deflate) is off unless asked for: its zlib state costs ~40 KiB
    per open socket, idle or not (see bench/README.md)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        http=OneWriteHttpProtocol,
        ws=PromptCloseProtocol,
        ws_max_size=1_048_576,
        ws_per_message_deflate=ws_compression,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )


def run_server(settings: Settings, *, host: str, port: int) -> int:
    configure_logging(settings.log_format, settings.log_level)
    if not settings.auth_enabled:
        log.warning(
            "auth_disabled",
            detail="BIGTHREE_API_KEYS is empty: routes are open; only loopback binds allowed",
        )
    app = create_app(settings)
    config = uvicorn_config(app, host=host, port=port, ws_compression=settings.ws_compression)
    server = DrainingServer(config, app, settings.drain_grace_s)
    server.run()
    if not server.started:
        return 1
    state: State | None = getattr(app.state, "bigthree", None)
    if state is not None and state.writer.lost is not None:
        return EXIT_WRITES_LOST  # the log line `store_writes_lost` says what
    return 0


EXIT_WRITES_LOST = 3
