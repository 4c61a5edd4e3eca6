"""Breaker commands for every replica: `POST /v1/providers/{name}/breaker` applies here and
is broadcast, so each replica applies it to its own breakers.

Breakers stay per replica (like outlier detection per host: each replica judges the
provider by its own calls); only the operator's commands are shared. A command is published
before it is applied here, so a command that could not reach the others (Redis down) fails
with 503 instead of silently holding on one replica only.
"""

from __future__ import annotations

from typing import get_args

import structlog

from app.coordination import Broadcast, Message
from app.providers.gateway import BreakerAction, ProviderGateway
from app.resilience.breaker import CircuitBreaker

log = structlog.get_logger(__name__)

TOPIC = "breaker"
ACTIONS = frozenset(get_args(BreakerAction))


class BreakerControl:
    def __init__(self, gateway: ProviderGateway, broadcast: Broadcast) -> None:
        self._gateway = gateway
        self._broadcast = broadcast
        broadcast.subscribe(TOPIC, self._on_command)

    @property
    def replica_id(self) -> str:
        return self._broadcast.replica_id

    async def act(
        self, provider: str, action: BreakerAction, model: str | None
    ) -> list[CircuitBreaker]:
        """Apply `action` on every replica; return this replica's breakers it changed."""
        await self._broadcast.publish(
            TOPIC, {"provider": provider, "action": action, "model": model}
        )
        return self._gateway.act_on_breakers(provider, action, model)

    async def _on_command(self, message: Message) -> None:
        if message.origin == self._broadcast.replica_id:
            return  # applied by `act` already
        body = message.body
        provider, action, model = body.get("provider"), body.get("action"), body.get("model")
        valid = (
            provider in self._gateway.providers
            and action in ACTIONS
            and (model is None or isinstance(model, str))
        )
        if not valid:
            log.warning("breaker_command_ignored", origin=message.origin, provider=provider)
            return
        assert isinstance(provider, str)
        self._gateway.act_on_breakers(provider, action, model)  # type: ignore[arg-type]
        log.info(
            "breaker_command_applied",
            origin=message.origin,
            provider=provider,
            action=action,
            model=model,
        )
