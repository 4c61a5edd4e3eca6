"""ProviderGateway: each provider with its resilience policy, readable and steerable.

One policy per provider, or per provider/model when `breaker_per_model` is set (then every
model of a provider shares the provider's bulkhead and retry budget, and only the breaker is
per model). Policies are made on first use. Hooks are supplied by the application, so this
module knows nothing of events or metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.core.config import Settings
from app.providers.base import Provider
from app.providers.registry import MissingKeyProvider
from app.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from app.resilience.budget import RetryBudget, RetryBudgetConfig
from app.resilience.bulkhead import Bulkhead, BulkheadConfig
from app.resilience.policy import ResilienceHooks, ResiliencePolicy
from app.resilience.retry import RetryPolicy

BreakerAction = Literal["reset", "force_open", "disable"]


@dataclass(frozen=True, slots=True)
class ResilienceConfig:
    retry: RetryPolicy
    breaker: BreakerConfig
    bulkhead: BulkheadConfig
    budget: RetryBudgetConfig
    call_timeout_s: float
    breaker_enabled: bool
    per_model: bool

    @classmethod
    def from_settings(cls, s: Settings) -> ResilienceConfig:
        return cls(
            retry=RetryPolicy(
                max_attempts=s.retry_max_attempts,
                initial_backoff_s=s.retry_initial_backoff_s,
                max_backoff_s=s.retry_max_backoff_s,
                max_server_wait_s=s.retry_max_server_wait_s,
            ),
            breaker=BreakerConfig(
                window_size=s.breaker_window_size,
                minimum_calls=s.breaker_minimum_calls,
                failure_rate_threshold=s.breaker_failure_rate_threshold,
                slow_call_duration_s=s.breaker_slow_call_duration_s,
                slow_call_rate_threshold=s.breaker_slow_call_rate_threshold,
                open_wait_s=s.breaker_open_wait_s,
                half_open_max_calls=s.breaker_half_open_max_calls,
                probe_timeout_s=s.breaker_probe_timeout_s,
            ),
            bulkhead=BulkheadConfig(
                max_concurrent=s.bulkhead_max_concurrent, max_wait_s=s.bulkhead_max_wait_s
            ),
            budget=RetryBudgetConfig(
                ratio=s.retry_budget_ratio,
                window_s=s.retry_budget_window_s,
                min_retries_per_s=s.retry_budget_min_per_s,
            ),
            call_timeout_s=s.provider_call_timeout_s,
            breaker_enabled=s.breaker_enabled,
            per_model=s.breaker_per_model,
        )


class ProviderGateway:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        config: ResilienceConfig,
        hooks: ResilienceHooks,
        *,
        base_urls: Mapping[str, str] | None = None,
    ) -> None:
        self.providers = dict(providers)
        self._config = config
        self._hooks = hooks
        self._base_urls = dict(base_urls or {})
        self._bulkheads: dict[str, Bulkhead] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._policies: dict[str, ResiliencePolicy] = {}
        # provider-wide force_open / disable, also applied to per-model breakers made later
        self._forced: dict[str, BreakerState] = {}
        for name in self.providers:
            self._bulkheads[name] = Bulkhead(
                name, config.bulkhead, on_reject=tuple(hooks.on_bulkhead_rejection)
            )
            self._budgets[name] = RetryBudget(config.budget)
            if not config.per_model:
                self._make_policy(name, name)

    @property
    def names(self) -> list[str]:
        return sorted(self.providers)

    def breaker_key(self, provider: str, model: str) -> str:
        return f"{provider}/{model}" if self._config.per_model else provider

    def policy_for(self, provider: str, model: str) -> ResiliencePolicy:
        key = self.breaker_key(provider, model)
        return self._policies.get(key) or self._make_policy(key, provider)

    def _make_policy(self, key: str, provider: str) -> ResiliencePolicy:
        breaker = CircuitBreaker(
            key,
            self._config.breaker,
            on_transition=tuple(self._hooks.on_breaker_transition),
            on_reject=tuple(self._hooks.on_breaker_rejection),
        )
        if not self._config.breaker_enabled:
            breaker.force(BreakerState.DISABLED)
        elif provider in self._forced:
            breaker.force(self._forced[provider])
        policy = ResiliencePolicy(
            provider,
            retry=self._config.retry,
            breaker=breaker,
            bulkhead=self._bulkheads[provider],
            budget=self._budgets[provider],
            call_timeout_s=self._config.call_timeout_s,
            hooks=self._hooks,
        )
        self._policies[key] = policy
        return policy

    def bulkhead_in_use(self, provider: str) -> int:
        return self._bulkheads[provider].in_use

    def breakers(self, provider: str) -> list[CircuitBreaker]:
        return [
            p.breaker
            for key, p in sorted(self._policies.items())
            if p.breaker is not None and (key == provider or key.startswith(provider + "/"))
        ]

    def status(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names:
            bulkhead = self._bulkheads[name]
            budget = self._budgets[name].snapshot()
            out.append(
                {
                    "name": name,
                    "configured": not isinstance(self.providers[name], MissingKeyProvider),
                    "base_url": self._base_urls.get(name),
                    "breakers": [b.snapshot() for b in self.breakers(name)],
                    "bulkhead": {
                        "limit": bulkhead.limit,
                        "in_use": bulkhead.in_use,
                        "waiting": bulkhead.waiting,
                    },
                    "retry_budget": budget,
                }
            )
        return out

    def act_on_breakers(
        self, provider: str, action: BreakerAction, model: str | None
    ) -> list[CircuitBreaker]:
        """reset: closed with an empty window; force_open / disable: stay so until reset.

        Without `model` the action covers the whole provider, including per-model breakers
        first made after it (a model never called before must not slip past a force_open).
        """
        if model is not None:
            targets = [self.policy_for(provider, model).breaker]
        else:
            if action == "reset":
                self._forced.pop(provider, None)
            elif action == "force_open":
                self._forced[provider] = BreakerState.FORCED_OPEN
            else:
                self._forced[provider] = BreakerState.DISABLED
            targets = list(self.breakers(provider))
        done = []
        for breaker in targets:
            if breaker is None:
                continue
            if action == "reset":
                breaker.reset()
            elif action == "force_open":
                breaker.force(BreakerState.FORCED_OPEN)
            else:
                breaker.force(BreakerState.DISABLED)
            done.append(breaker)
        return done

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
