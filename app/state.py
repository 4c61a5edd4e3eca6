"""The typed bundle of long-lived objects the composition root (`app/main.py`) builds.

Only the composition root, the server's drain (`app/server.py`) and the realtime service,
which spans domains, use it. Routes never do: each domain has its own dependency functions
(`app/<domain>/deps.py`) reading the objects the composition root put on `app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.service import AgentManager
from app.coordination import Broadcast
from app.core.config import Settings
from app.core.metrics import Metrics
from app.events.hub import Hub
from app.events.service import EventBus
from app.providers.gateway import ProviderGateway
from app.store.writer import StoreWriter


@dataclass(frozen=True, slots=True)
class State:
    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    hub: Hub
    bus: EventBus
    writer: StoreWriter
    manager: AgentManager
    gateway: ProviderGateway
    broadcast: Broadcast
