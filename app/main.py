"""create_app(): the FastAPI application, its middleware, routes and lifespan.

The lifespan builds every stateful object once — store, event bus, providers (one httpx
client each), resilience policies, the AgentManager — and tears them down in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__
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
from app.agents.telemetry import ResilienceTelemetry, count_tool_results
from app.agents.usage import UsageAccounting
from app.artifacts.endpoints import router as artifacts_router
from app.artifacts.repository import ArtifactRepository
from app.artifacts.service import ArtifactStore
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.gc_tuning import settle_after_startup
from app.core.http_metrics import HttpMetricsMiddleware
from app.core.metrics import GatewayCollector, Metrics
from app.core.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.events.endpoints import router as events_router
from app.events.hub import GOING_AWAY, Hub
from app.events.repository import EventRepository
from app.events.service import EventBus
from app.health.docs import install_docs
from app.health.endpoints import router as health_router
from app.providers.endpoints import router as providers_router
from app.providers.gateway import ProviderGateway, ResilienceConfig
from app.providers.pricing import PriceTable
from app.providers.registry import PROVIDER_NAMES, build_providers
from app.realtime.endpoints import router as realtime_router
from app.realtime.service import RealtimeService
from app.state import State
from app.store.engine import create_engine
from app.store.migrations import migrate
from app.store.writer import StoreWriter
from app.store.writers import open_write_backend
from app.tools.browser.launcher import BrowserPool
from app.ui import install_ui

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        await migrate(engine)
        writer = StoreWriter(
            open_write_backend(settings),
            request_timeout_s=settings.store_write_timeout_s,
            on_retry=lambda operation: metrics.store_write_retries.labels(operation).inc(),
            on_availability=lambda up: metrics.store_available.set(1 if up else 0),
        )
        await writer.start()
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
            lambda e: metrics.events.labels(
                "internal" if e.source in _INTERNAL else "external"
            ).inc()
        )
        telemetry = ResilienceTelemetry(bus, metrics)
        gateway = ProviderGateway(
            build_providers(settings),
            ResilienceConfig.from_settings(settings),
            telemetry.hooks(),
            base_urls={n: getattr(settings, f"{n}_base_url") for n in PROVIDER_NAMES},
        )
        metrics.registry.register(GatewayCollector(gateway))
        usage = UsageAccounting(
            prices=PriceTable.load(settings.pricing_file),  # loaded once, for every caller
            metrics=metrics,
            writer=writer,
            repository=UsageRepository(engine),
        )
        llm = LLMClient(gateway, bus=bus, metrics=metrics, usage=usage, telemetry=telemetry)
        artifacts = ArtifactStore(
            settings.data_dir / "artifacts",
            ArtifactRepository(engine),
            metrics,
            task_max_bytes=settings.browser_artifacts_task_max_bytes,
            total_max_bytes=settings.browser_artifacts_max_bytes,
        )
        await artifacts.start()
        browsers = BrowserPool(settings, metrics)  # starts nothing until a browser task runs
        orchestrator = OrchestratorRunner(settings)
        claude_code = ClaudeCodeRunner(settings, bus)
        claude_code.start()  # kill CLI processes a crash left behind
        manager = AgentManager(
            settings=settings,
            agents=AgentRepository(engine),
            tasks=TaskRepository(engine),
            writer=writer,
            bus=bus,
            llm=llm,
            metrics=metrics,
            runners={
                "chat": ChatRunner(),
                "coder": CoderRunner(settings),
                "orchestrator": orchestrator,
                "claude_code": claude_code,
                "browser": BrowserRunner(settings, browsers, artifacts, metrics),
            },
            artifacts=artifacts,
        )
        orchestrator.bind(manager)
        await manager.start()
        app.state.bigthree = State(settings, metrics, engine, hub, bus, writer, manager, gateway)
        app.state.realtime = RealtimeService(app.state.bigthree, usage)
        bus.emit("service.started", payload={"version": __version__})
        log.info("service_started", version=__version__, database=_safe_url(settings))
        settle_after_startup()
        try:
            yield
        finally:
            await manager.shutdown()
            await claude_code.aclose()
            await browsers.aclose()
            hub.close_all(GOING_AWAY)
            bus.emit("service.stopped", payload={})
            await writer.close(within_s=settings.store_shutdown_write_s)  # logs what is lost
            await gateway.aclose()
            await engine.dispose()
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
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
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
    app.include_router(artifacts_router)
    app.include_router(events_router)
    app.include_router(providers_router)
    app.include_router(realtime_router)
    install_ui(app, settings)
    return app


# sources of the service's own events (claude_code: Claude Code's hooks, run in-process)
_INTERNAL = frozenset({"service", "provider", "agent", "realtime", "claude_code"})


def _safe_url(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url.split("@")[-1] if "@" in url else url
