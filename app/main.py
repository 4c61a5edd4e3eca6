"""create_app(): the FastAPI application, its middleware, routes and lifespan.

The lifespan builds every stateful object once — store, coordination, event bus, providers
(one httpx client each), resilience policies, the AgentManager — and tears them down in
reverse order, each whatever happened to the others (`Teardown`). This is the composition
root: the one module that knows every domain and wires their dependencies together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.ext.asyncio import AsyncEngine

from app import __version__
from app.agents.endpoints import router as agents_router
from app.agents.files import router as files_router
from app.agents.kinds.chat import ChatRunner
from app.agents.kinds.claude_code.runner import ClaudeCodeRunner
from app.agents.kinds.coder import CoderRunner
from app.agents.kinds.orchestrator import OrchestratorRunner
from app.agents.llm import LLMClient
from app.agents.repository import AgentRepository, TaskRepository, UsageRepository
from app.agents.service import AgentManager
from app.agents.task_events import router as task_events_router
from app.agents.telemetry import GatewayCollector, ResilienceTelemetry, count_tool_results
from app.agents.usage import UsageLedger
from app.coordination import build_broadcast, new_replica_id
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.lifecycle import Teardown
from app.core.metrics import Metrics
from app.core.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.events.endpoints import router as events_router
from app.events.hub import GOING_AWAY, Hub
from app.events.repository import EventRepository
from app.events.service import EventBus
from app.health.checks import Readiness
from app.health.docs import install_docs
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
from app.ui import install_ui

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
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

    app = FastAPI(
        title="Big Three",
        version=__version__,
        description="Runs and orchestrates LLM agents: REST + WebSocket, events, metrics.",
        lifespan=lifespan,
        openapi_url=None,  # served by install_docs, behind authentication
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    Instrumentator(
        should_group_status_codes=True,
        excluded_handlers=["/metrics", "/health"],  # probes: frequent, and never interesting
        registry=metrics.registry,
    ).instrument(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],
        )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    install_docs(app, settings)
    app.include_router(agents_router)
    app.include_router(files_router)
    app.include_router(events_router)
    app.include_router(task_events_router)
    app.include_router(providers_router)
    app.include_router(realtime_router)
    install_ui(app, settings)
    return app


# sources of the service's own events (claude_code: Claude Code's hooks, run in-process)
_INTERNAL = frozenset({"service", "provider", "agent", "realtime", "claude_code"})


async def _start(app: FastAPI, settings: Settings, metrics: Metrics, teardown: Teardown) -> None:
    """Build every long-lived object, wire it onto `app.state`, and register its closing
    with `teardown` as soon as it exists (a failed start closes what was opened)."""
    url = settings.resolved_database_url
    await upgrade_database(url)
    engine = create_engine(url)
    teardown.add("store", engine.dispose)
    broadcast = build_broadcast(
        settings.redis_url, prefix=settings.redis_prefix, replica_id=new_replica_id()
    )
    await broadcast.start()
    teardown.add("coordination", broadcast.aclose)
    hub = Hub(settings.ws_queue_size)
    bus = EventBus(
        EventRepository(engine),
        hub,
        payload_max_bytes=settings.event_payload_max_bytes,
        retention=settings.events_retention,
    )
    bus.add_listener(count_tool_results(metrics))
    bus.add_listener(
        lambda e: metrics.events.labels("internal" if e.source in _INTERNAL else "external").inc()
    )
    await bus.start()
    teardown.add("event bus", bus.stop)  # flushes what is still pending
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
    usage = UsageLedger(UsageRepository(engine))
    usage.start()
    teardown.add("usage ledger", usage.aclose)
    llm = LLMClient(
        gateway,
        bus=bus,
        metrics=metrics,
        prices=PriceTable.load(settings.pricing_file),
        usage=usage,
        telemetry=telemetry,
    )
    orchestrator = OrchestratorRunner(settings)
    claude_code = ClaudeCodeRunner(settings, bus)
    claude_code.start()  # kill CLI processes a crash left behind
    teardown.add("claude code", claude_code.aclose)
    manager = AgentManager(
        settings=settings,
        agents=AgentRepository(engine),
        tasks=TaskRepository(engine),
        bus=bus,
        llm=llm,
        metrics=metrics,
        runners={
            "chat": ChatRunner(),
            "coder": CoderRunner(settings),
            "orchestrator": orchestrator,
            "claude_code": claude_code,
        },
    )
    orchestrator.bind(manager)
    await manager.start()
    teardown.add("agents", manager.shutdown)
    readiness = Readiness()
    readiness.probe("postgres" if engine.dialect.name == "postgresql" else "store", _pinger(engine))
    if broadcast.backend == "redis":
        readiness.probe("redis", broadcast.ping)
    readiness.flag("draining", lambda: manager.draining, "draining: the service is shutting down")
    state = State(settings, metrics, engine, hub, bus, manager, gateway, broadcast)
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


def _pinger(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        await ping(engine)

    return probe


def _safe_url(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url.split("@")[-1] if "@" in url else url
