"""Resilience for upstream calls: deadlines, retries, circuit breakers, bulkheads, fallbacks.

Knows no vendor's JSON and imports neither Prometheus nor FastAPI; instrumentation arrives
as hook callables receiving frozen records. `ResiliencePolicy` (policy.py) composes the rest.
"""

from app.resilience.breaker import (
    BreakerConfig,
    BreakerRejection,
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    is_health_failure,
)
from app.resilience.budget import BudgetSnapshot, RetryBudget, RetryBudgetConfig
from app.resilience.bulkhead import Bulkhead, BulkheadConfig, BulkheadRejection
from app.resilience.errors import (
    AttemptTimedOut,
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    ResilienceError,
    UpstreamFailure,
    reason_of,
)
from app.resilience.fallback import (
    FallbackAttempt,
    FallbackHop,
    call_with_fallbacks,
    default_should_fall_back,
    fallback_attempts,
)
from app.resilience.policy import (
    AttemptRecord,
    BudgetExhausted,
    ResilienceHooks,
    ResiliencePolicy,
    RetryRecord,
)
from app.resilience.retry import RetryPolicy
from app.resilience.timeouts import Deadline, Timeouts, current_deadline, deadline_scope

__all__ = [
    "AttemptRecord",
    "AttemptTimedOut",
    "BreakerConfig",
    "BreakerRejection",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "BudgetExhausted",
    "BudgetSnapshot",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFull",
    "BulkheadRejection",
    "CircuitBreaker",
    "CircuitOpen",
    "Deadline",
    "DeadlineExceeded",
    "FallbackAttempt",
    "FallbackHop",
    "ResilienceError",
    "ResilienceHooks",
    "ResiliencePolicy",
    "RetryBudget",
    "RetryBudgetConfig",
    "RetryPolicy",
    "RetryRecord",
    "Timeouts",
    "UpstreamFailure",
    "call_with_fallbacks",
    "current_deadline",
    "deadline_scope",
    "default_should_fall_back",
    "fallback_attempts",
    "is_health_failure",
    "reason_of",
]
