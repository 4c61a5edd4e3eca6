"""A Claude Code run's end (its result message) → the task's result, error, usage and cost.

    success                 → the result text
    API error (429, 5xx...) → the provider error for that status (rate_limited, overloaded,
                              server_error, ...); 429/5xx/529 count on the anthropic breaker
    error_max_turns         → failed `max_turns`
    error_max_budget_usd    → failed `cost_limit` (the budget is BIGTHREE_TASK_MAX_COST_USD)
    anything else           → failed `claude_code_error`, with Claude Code's own words

Usage and cost are Claude Code's own figures per model (`modelUsage`): the cost is what its
budget is enforced against, so BIGTHREE_PRICING_FILE does not reprice it. A run that ends
without a result (killed) is priced from the usage streamed so far, with the price table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.agents.kinds.base import TaskFailed
from app.providers.base import Usage
from app.providers.errors import ProviderError, error_for_status

PROVIDER = "anthropic"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def usage_of(raw: Mapping[str, Any] | None) -> Usage:
    """Anthropic usage (input excludes cache reads and writes) → the service's `Usage`
    (input counts every input token, cached ones included)."""
    raw = raw or {}
    cached = _int(raw.get("cache_read_input_tokens"))
    fresh = _int(raw.get("input_tokens")) + _int(raw.get("cache_creation_input_tokens"))
    return Usage(fresh + cached, _int(raw.get("output_tokens")), cached)


@dataclass(frozen=True, slots=True)
class ModelSpend:
    model: str
    usage: Usage
    cost_usd: float | None  # None: price it from the table


@dataclass(frozen=True, slots=True)
class RunResult:
    """The fields of the SDK's `ResultMessage` the service uses."""

    subtype: str
    is_error: bool
    num_turns: int
    session_id: str
    result: str | None = None
    total_cost_usd: float | None = None
    usage: Mapping[str, Any] | None = None
    model_usage: Mapping[str, Any] | None = None
    api_error_status: int | None = None
    terminal_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    duration_api_ms: int = 0
    permission_denials: int = 0

    def spend(self, default_model: str) -> list[ModelSpend]:
        """Usage and cost per model, as Claude Code counted them."""
        spent = []
        for model, raw in (self.model_usage or {}).items():
            if isinstance(raw, Mapping):
                cached = _int(raw.get("cacheReadInputTokens"))
                fresh = _int(raw.get("inputTokens")) + _int(raw.get("cacheCreationInputTokens"))
                usage = Usage(fresh + cached, _int(raw.get("outputTokens")), cached)
                cost = raw.get("costUSD")
                spent.append(
                    ModelSpend(model, usage, float(cost) if isinstance(cost, int | float) else 0.0)
                )
        if not spent and (self.usage or self.total_cost_usd):
            spent.append(ModelSpend(default_model, usage_of(self.usage), self.total_cost_usd))
        return spent

    @property
    def api_error(self) -> ProviderError | None:
        """The upstream error that ended the run, typed as a provider call's would be."""
        status = self.api_error_status
        if status is None:
            return None
        message = (self.result or "").strip() or f"API error {status}"
        return error_for_status(status)(f"{PROVIDER}: {message}", provider=PROVIDER, status=status)

    def mean_call_s(self) -> float:
        """Mean API time per turn: what the breaker's slow-call test looks at."""
        return self.duration_api_ms / 1000.0 / max(1, self.num_turns)

    def text(self, *, max_turns: int, max_cost_usd: float) -> str:
        """The task's result, or the exception that fails it."""
        error = self.api_error
        if error is not None:
            raise error
        if self.subtype == "error_max_turns":
            raise TaskFailed(
                "max_turns",
                f"Claude Code still had work after its {max_turns} turns (max_turns)",
                max_turns=max_turns,
            )
        if self.subtype == "error_max_budget_usd":
            spent = self.total_cost_usd or 0.0
            raise TaskFailed(
                "cost_limit",
                f"the run spent ${spent:.4f}, reaching its ${max_cost_usd:g} budget "
                "(BIGTHREE_TASK_MAX_COST_USD)",
                cost_usd=spent,
                max_cost_usd=max_cost_usd,
            )
        if self.is_error or self.subtype != "success":
            said = "; ".join(self.errors) or (self.result or "").strip() or self.subtype
            raise TaskFailed(
                "claude_code_error",
                f"Claude Code ended with {self.subtype}: {said}"[:2000],
                subtype=self.subtype,
                terminal_reason=self.terminal_reason,
            )
        return self.result or ""

    def summary(self) -> dict[str, Any]:
        """The `claude_code.result` event's payload."""
        return {
            "subtype": self.subtype,
            "is_error": self.is_error,
            "num_turns": self.num_turns,
            "session_id": self.session_id,
            "total_cost_usd": self.total_cost_usd,
            "duration_api_s": round(self.duration_api_ms / 1000.0, 3),
            "api_error_status": self.api_error_status,
            "terminal_reason": self.terminal_reason,
            "permission_denials": self.permission_denials,
        }


@dataclass(slots=True)
class StreamedUsage:
    """The run's API calls' usage as their streams report it (`message_start`, then the
    cumulative `message_delta`): what a run killed before its result has spent."""

    _calls: dict[str, tuple[str, Usage]] = field(default_factory=dict)
    _current: dict[str | None, str] = field(default_factory=dict)  # stream → message id

    def event(self, event: Mapping[str, Any], stream: str | None) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, Mapping) and isinstance(message.get("id"), str):
                self._current[stream] = message["id"]
                model = str(message.get("model") or "")
                self._calls[message["id"]] = (model, usage_of(message.get("usage")))
        elif kind == "message_delta" and stream in self._current:
            message_id = self._current[stream]
            model, seen = self._calls[message_id]
            raw = event.get("usage")
            if isinstance(raw, Mapping):
                output = _int(raw.get("output_tokens"))
                usage = Usage(seen.input_tokens, output, seen.cached_input_tokens)
                self._calls[message_id] = (model, usage)

    def spend(self, default_model: str) -> list[ModelSpend]:
        totals: dict[str, Usage] = {}
        for model, usage in self._calls.values():
            key = model or default_model
            totals[key] = totals.get(key, Usage()) + usage
        return [ModelSpend(model, usage, None) for model, usage in totals.items()]
