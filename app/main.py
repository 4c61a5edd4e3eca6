"""create_app(): the FastAPI application, its middleware, routes and lifespan.

The lifespan builds every stateful object once — store and its writer, coordination, event
bus, providers (one httpx client each), resilience policies, the AgentManager — and tears
them down in reverse order, each whatever happened to the others (`Teardown`). This is the
composition root: the one module that knows every domain and wires their dependencies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from app import __version__
from app.agents.artifact_endpoints import router as artifacts_router
from app.agents.claims import TaskClaims
from app.agents.directory import AgentDirectory
from app.agents.endpoints import LANE as agents_lane
from app.agents.endpoints import router as agents_router
from app.agents.files import router as files_router
from app.agents.kinds.browser import BrowserRunner
from app.agents.kinds.chat import ChatRunner
from app.agents.kinds.claude_code.runner import ClaudeCodeRunner
from app.agents.kinds.coder import CoderRunner
from app.agents.kinds.orchestrator import OrchestratorRunner
from app.agents.llm import LLMClient
from app.agents.repository import AgentRepository, TaskRepository, UsageRepository
from app.agents.service import AgentManager
from app.agents.shared import SharedAgentManager
from app.agents.task_events import router as task_events_router
from app.agents.telemetry import ResilienceTelemetry, count_tool_results
from app.agents.usage import UsageAccounting
from app.artifacts.repository import ArtifactRepository
from app.artifacts.service import ArtifactStore
from app.coordination import Broadcast, build_broadcast, new_replica_id
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.fast_lane import FastLane
from app.core.gc_tuning import settle_after_startup
from app.core.lifecycle import Teardown
from app.core.metrics import GatewayCollector, Metrics
from app.core.middleware import BodyLimitMiddleware, RequestEnvelope
from app.core.redaction import remember_secrets
from app.core.service_app import ServiceApp
from app.events.endpoints import LANE as events_lane
from app.events.endpoints import router as events_router
from app.events.follow import LogFollower
from app.events.hub import GOING_AWAY, Hub
from app.events.repository import EventRepository
from app.events.schemas import LiveEvent
from app.events.service import EventBus
from app.events.socket import PATH as EVENTS_SOCKET
from app.events.socket import serve_event_socket
from app.health.checks import Condition, Readiness
from app.health.docs import install_docs
from app.health.endpoints import LANE as health_lane
from app.health.endpoints import router as health_router
from app.providers.control import BreakerControl
from app.providers.endpoints import router as providers_router
from app.providers.gateway import ProviderGateway, ResilienceConfig
from app.providers.pricing import PriceTable
from app.providers.registry import PROVIDER_NAMES, build_providers
from app.realtime.endpoints import router as realtime_router
from app.realtime.service import RealtimeService
from app.state import State
from app.store.engine import create_engine, ping
from app.store.migrations import upgrade_database
from app.store.writer import StoreWriter
from app.store.writers import open_write_backend
from app.tools.browser.launcher import BrowserPool
from app.ui import install_ui

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    remember_secrets(settings.secrets())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        teardown = Teardown()
        try:
            await _start(app, settings, metrics, teardown)
            yield
        finally:
            await teardown.run()
            log.info("service_stopped")

    app = ServiceApp(
        title="Big Three",
        version=__version__,
        description="Runs and orchestrates LLM agents: REST + WebSocket, events, metrics.",
        lifespan=lifespan,
        openapi_url=None,  # served by install_docs, behind authentication
        docs_url=None,
        redoc_url=None,
        # the service's telemetry is Prometheus (/metrics) and structlog; FastAPI's native
        # OpenTelemetry would otherwise ask three global providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.socket_paths = {EVENTS_SOCKET: serve_event_socket}
    app.include_router(health_router)
    install_docs(app, settings)
    app.include_router(agents_router)
    app.include_router(files_router)
    app.include_router(artifacts_router)
    app.include_router(events_router)
    app.include_router(task_events_router)
    app.include_router(providers_router)
    app.include_router(realtime_router)
    install_ui(app, settings)
    app.wrap(lambda fastapi: _front(fastapi, settings, metrics))
    return app


def _front(fastapi: ASGIApp, settings: Settings, metrics: Metrics) -> ASGIApp:
    """The layers every request passes before FastAPI (outermost first): the request
    envelope, CORS when origins are configured, the body limit, the fast lane."""
    inner: ASGIApp = FastLane(
        fastapi,
        routes=[*health_router.routes, *agents_router.routes, *events_router.routes],
        lane=[*health_lane, *agents_lane, *events_lane],
    )
    inner = BodyLimitMiddleware(inner, max_bytes=settings.max_request_body_bytes)
    if settings.cors_origins:
        inner = CORSMiddleware(
            inner,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],
        )
    return RequestEnvelope(inner, metrics=metrics.http)


# sources of the service's own events (claude_code: Claude Code's hooks, run in-process)
_INTERNAL = frozenset({"service", "provider", "agent", "realtime", "claude_code"})


async def _start(app: FastAPI, settings: Settings, metrics: Metrics, teardown: Teardown) -> None:
    """Build every long-lived object, wire it onto `app.state`, and register its closing
    with `teardown` as soon as it exists (a failed start closes what was opened)."""
    url = settings.resolved_database_url
    await upgrade_database(url)
    engine = create_engine(url)
    teardown.add("store", engine.dispose)
    writer = StoreWriter(
        open_write_backend(settings),
        request_timeout_s=settings.store_write_timeout_s,
        on_retry=lambda operation: metrics.store_write_retries.labels(operation).inc(),
        on_availability=lambda up: metrics.store_available.set(1 if up else 0),
    )
    await writer.start()
    # logs what could not be written
    teardown.add("store writer", lambda: writer.close(within_s=settings.store_shutdown_write_s))
    broadcast = build_broadcast(
        settings.redis_url, prefix=settings.redis_prefix, replica_id=new_replica_id()
    )
    await broadcast.start()
    teardown.add("coordination", broadcast.aclose)
    hub = Hub(settings.ws_queue_size)
    bus = EventBus(
        writer,
        EventRepository(engine),
        hub,
        payload_max_bytes=settings.event_payload_max_bytes,
        retention=settings.events_retention,
    )
    bus.add_listener(count_tool_results(metrics))
    bus.add_listener(
        lambda e: metrics.events.labels("internal" if e.source in _INTERNAL else "external").inc()
    )
    teardown.add("service.stopped event", lambda: bus.emit("service.stopped", payload={}))
    teardown.add("event streams", lambda: hub.close_all(GOING_AWAY))
    telemetry = ResilienceTelemetry(bus, metrics)
    gateway = ProviderGateway(
        build_providers(settings),
        ResilienceConfig.from_settings(settings),
        telemetry.hooks(),
        base_urls={n: getattr(settings, f"{n}_base_url") for n in PROVIDER_NAMES},
    )
    teardown.add("providers", gateway.aclose)
    metrics.registry.register(GatewayCollector(gateway))
    usage = UsageAccounting(
        prices=PriceTable.load(settings.pricing_file),  # loaded once, for every caller
        metrics=metrics,
        writer=writer,
        repository=UsageRepository(engine),
    )
    llm = LLMClient(gateway, bus=bus, metrics=metrics, usage=usage, telemetry=telemetry)
    artifacts = ArtifactStore(
        settings.resolved_artifacts_dir,
        ArtifactRepository(engine),
        writer,
        metrics,
        task_max_bytes=settings.browser_artifacts_task_max_bytes,
        total_max_bytes=settings.browser_artifacts_max_bytes,
        per_replica=settings.artifacts_per_replica,
    )
    await artifacts.start()
    browsers = BrowserPool(settings, metrics)  # starts nothing until a browser task runs
    teardown.add("browsers", browsers.aclose)
    orchestrator = OrchestratorRunner(settings)
    claude_code = ClaudeCodeRunner(settings, bus)
    claude_code.start()  # kill CLI processes a crash left behind
    teardown.add("claude code", claude_code.aclose)
    parts: dict[str, Any] = {
        "settings": settings,
        "agents": AgentRepository(engine),
        "tasks": TaskRepository(engine),
        "writer": writer,
        "bus": bus,
        "llm": llm,
        "metrics": metrics,
        "runners": {
            "chat": ChatRunner(),
            "coder": CoderRunner(settings),
            "orchestrator": orchestrator,
            "claude_code": claude_code,
            "browser": BrowserRunner(settings, browsers, artifacts, metrics),
        },
        "artifacts": artifacts,
    }
    manager: AgentManager
    if engine.dialect.name == "postgresql":
        manager = await _shared_manager(engine, bus, hub, broadcast, settings, parts, teardown)
    else:
        manager = AgentManager(**parts)
    orchestrator.bind(manager)
    await manager.start()
    teardown.add("agents", manager.shutdown)
    readiness = Readiness()
    readiness.probe("postgres" if engine.dialect.name == "postgresql" else "store", _pinger(engine))
    readiness.condition("store_writes", lambda: _store_writes(writer))
    if broadcast.backend == "redis":
        readiness.probe("redis", broadcast.ping)
    readiness.flag("draining", lambda: manager.draining, "draining: the service is shutting down")
    state = State(settings, metrics, engine, hub, bus, writer, manager, gateway, broadcast)
    app.state.bigthree = state
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.manager = manager
    app.state.bus = bus
    app.state.hub = hub
    app.state.gateway = gateway
    app.state.breaker_control = BreakerControl(gateway, broadcast)
    app.state.readiness = readiness
    app.state.realtime = RealtimeService(state, usage)
    bus.emit("service.started", payload={"version": __version__})
    log.info(
        "service_started",
        version=__version__,
        database=_safe_url(settings),
        replica=broadcast.replica_id,
        coordination=broadcast.backend,
    )
    settle_after_startup()


async def _shared_manager(
    engine: AsyncEngine,
    bus: EventBus,
    hub: Hub,
    broadcast: Broadcast,
    settings: Settings,
    parts: dict[str, Any],
    teardown: Teardown,
) -> SharedAgentManager:
    """Scale-out (PostgreSQL): the database is the queue and the event log every replica
    follows; see app/agents/shared.py."""
    events = EventRepository(engine)
    manager_ref: list[SharedAgentManager] = []

    async def on_batch(batch: list[LiveEvent]) -> None:
        if manager_ref:
            await manager_ref[0].on_events(batch)

    follower = LogFollower(events, hub, broadcast, on_batch=on_batch)
    bus.follow(follower)
    await follower.start()
    teardown.add("event follower", follower.aclose)
    manager = SharedAgentManager(
        claims=TaskClaims(engine, replica_id=broadcast.replica_id, lease_s=settings.task_lease_s),
        directory=AgentDirectory(engine),
        follower=follower,
        events=events,
        broadcast=broadcast,
        **parts,
    )
    manager_ref.append(manager)
    return manager


def _store_writes(writer: StoreWriter) -> Condition | None:
    """Not ready while the store cannot take writes (what is kept meanwhile, by operation)."""
    health = writer.health()
    if health.available:
        return None
    kept = sum(health.pending_writes.values())
    return Condition(
        value=health.reason or "unavailable",
        reason=f"store cannot take writes ({health.reason}: {health.detail}); "
        f"{kept} writes kept until it can",
        details={"pending_writes": health.pending_writes} if health.pending_writes else {},
    )


def _pinger(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        await ping(engine)

    return probe


def _safe_url(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url.split("@")[-1] if "@" in url else url
