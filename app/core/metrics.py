"""Every Prometheus metric the service exports, in one place, on one registry per app.

A registry per app (not the process-global one) keeps several apps in one process (tests,
benchmarks) from colliding. Breaker state and bulkhead use are read live at scrape time by
`GatewayCollector` below; the HTTP series are `HttpSeries` (app/core/http_metrics.py).
Label values are bounded: providers and outcomes are closed sets, models pass through
`BoundedLabel` so a client cannot mint unlimited series, route templates are the app's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app import __version__
from app.core.http_metrics import HttpSeries

LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

CIRCUIT_STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2, "forced_open": 3, "disabled": 4}
# why a realtime session ended, and what failed upstream (closed sets: every series starts at 0)
REALTIME_END_REASONS = (
    "client_closed",
    "upstream_closed",
    "upstream_unavailable",
    "time_limit",
    "slow_client",
    "shutdown",
    "at_capacity",
    "protocol_error",
    "internal_error",
)
REALTIME_UPSTREAM_ERRORS = ("connect", "error_event", "closed")


M = TypeVar("M", Counter, Gauge, Histogram)


class Labelled(Generic[M]):
    """A labelled metric whose children are looked up once per label set:
    prometheus_client's `labels()` validates and takes a lock on every call, a visible
    share of a request's CPU on the hot paths. Label sets are bounded (see BoundedLabel)."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class BoundedLabel:
    """Pass the first `limit` distinct values through; map any later newcomer to `other`."""

    def __init__(self, limit: int = 50, overflow: str = "other") -> None:
        self._limit = limit
        self._overflow = overflow
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return self._overflow


# browser agents: the predefined computer-use actions (+ "unknown"), what became of each,
# and where the navigation guard refused something (closed sets: every series starts at 0)
BROWSER_ACTIONS = (
    "open_web_browser",
    "wait_5_seconds",
    "go_back",
    "go_forward",
    "search",
    "click_at",
    "hover_at",
    "type_text_at",
    "key_combination",
    "navigate",
    "scroll_document",
    "scroll_at",
    "drag_and_drop",
    "unknown",
)
BROWSER_ACTION_OUTCOMES = ("ok", "error", "refused")
BROWSER_REFUSAL_STAGES = (
    "navigate",
    "navigation",
    "subresource",
    "websocket",
    "popup",
    "download",
    "connection",
)

# the kept (durable) store writes retried while the store is unavailable (app/store/writer.py)
STORE_WRITE_OPERATIONS = (
    "task_running",
    "task_finished",
    "task_unstarted",
    "events",
    "usage",
    "prune",
    "agent_session",
    "artifact_saved",
    "artifact_evicted",
)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.model_label = BoundedLabel()
        Info("bigthree_build", "Service build information.", registry=r).info(
            {"version": __version__}
        )
        self.http = HttpSeries(r)  # app/core/http_metrics.py
        # tasks and agents
        self.tasks_submitted = Labelled(
            Counter("bigthree_tasks_submitted_total", "Tasks accepted.", ["kind"], registry=r)
        )
        self.tasks_finished = Labelled(
            Counter(
                "bigthree_tasks_total",
                "Tasks finished, by outcome.",
                ["kind", "outcome"],
                registry=r,
            )
        )
        self.task_duration = Labelled(
            Histogram(
                "bigthree_task_duration_seconds",
                "Task run time from start to finish.",
                ["kind", "outcome"],
                buckets=TASK_BUCKETS,
                registry=r,
            )
        )
        self.task_queue_wait = Labelled(
            Histogram(
                "bigthree_task_queue_wait_seconds",
                "Time tasks spent queued before running.",
                ["kind"],
                buckets=TASK_BUCKETS,
                registry=r,
            )
        )
        self.tasks_queued = Gauge(
            "bigthree_tasks_queued",
            "Tasks waiting to run. Replicas on PostgreSQL: the shared queue, the same value "
            "on every replica (aggregate with max, not sum), refreshed every few seconds.",
            registry=r,
        )
        self.tasks_running = Gauge("bigthree_tasks_running", "Tasks running now.", registry=r)
        self.agents = Gauge("bigthree_agents", "Registered agents (not deleted).", registry=r)
        self.draining = Gauge("bigthree_draining", "1 while shutting down.", registry=r)
        # providers
        self.llm_requests = Labelled(
            Counter(
                "bigthree_llm_requests_total",
                "Provider calls (each attempt), by outcome.",
                ["provider", "model", "outcome"],
                registry=r,
            )
        )
        self.llm_duration = Labelled(
            Histogram(
                "bigthree_llm_request_duration_seconds",
                "Provider call latency (each attempt).",
                ["provider", "model"],
                buckets=LLM_BUCKETS,
                registry=r,
            )
        )
        self.llm_retries = Counter(
            "bigthree_llm_retries_total", "Retries scheduled.", ["provider", "reason"], registry=r
        )
        self.llm_tokens = Labelled(
            Counter(
                "bigthree_llm_tokens_total",
                "Tokens used, by direction.",
                ["provider", "model", "direction"],
                registry=r,
            )
        )
        self.llm_cost = Labelled(
            Counter(
                "bigthree_llm_cost_usd_total",
                "Priced cost in USD.",
                ["provider", "model"],
                registry=r,
            )
        )
        self.llm_fallbacks = Counter(
            "bigthree_llm_fallbacks_total",
            "Fallback hops from one provider to another.",
            ["from_provider", "to_provider"],
            registry=r,
        )
        self.llm_budget_exhausted = Counter(
            "bigthree_llm_retry_budget_exhausted_total",
            "Retries refused because the provider's retry budget was spent.",
            ["provider"],
            registry=r,
        )
        self.circuit_transitions = Counter(
            "bigthree_circuit_transitions_total",
            "Breaker state changes.",
            ["breaker", "from", "to"],
            registry=r,
        )
        self.bulkhead_rejections = Counter(
            "bigthree_bulkhead_rejections_total",
            "Calls refused because the provider bulkhead was full.",
            ["provider"],
            registry=r,
        )
        self.tool_calls = Labelled(
            Counter(
                "bigthree_tool_calls_total",
                "Tool calls run by coder and orchestrator agents, by outcome (ok or error).",
                ["outcome"],
                registry=r,
            )
        )
        for outcome in ("ok", "error"):
            self.tool_calls.labels(outcome)
        self.store_write_retries = Counter(
            "bigthree_store_write_retries_total",
            "Kept store writes retried while the store was unavailable (full, read-only, locked).",
            ["operation"],
            registry=r,
        )
        for operation in STORE_WRITE_OPERATIONS:
            self.store_write_retries.labels(operation)
        # browser agents
        self.browser_pages_open = Gauge(
            "bigthree_browser_pages_open", "Browser pages (one browser each) open now.", registry=r
        )
        self.browser_pages_max = Gauge(
            "bigthree_browser_pages_max",
            "Browser pages allowed open at once (BIGTHREE_BROWSER_MAX_PAGES).",
            registry=r,
        )
        self.browser_actions = Counter(
            "bigthree_browser_actions_total",
            "Computer-use actions, by action and outcome (ok, error, refused).",
            ["action", "outcome"],
            registry=r,
        )
        self.browser_navigation_refusals = Counter(
            "bigthree_browser_navigation_refusals_total",
            "Requests and navigations the browser guard refused, by stage.",
            ["stage"],
            registry=r,
        )
        self.browser_artifact_bytes = Gauge(
            "bigthree_browser_artifact_bytes", "Screenshot bytes stored now.", registry=r
        )
        for action in BROWSER_ACTIONS:
            for outcome in BROWSER_ACTION_OUTCOMES:
                self.browser_actions.labels(action, outcome)
        for stage in BROWSER_REFUSAL_STAGES:
            self.browser_navigation_refusals.labels(stage)
        self.store_available = Gauge(
            "bigthree_store_available",
            "1 while the store takes writes; 0 while it is full, read-only or locked.",
            registry=r,
        )
        self.store_available.set(1)
        # events and websockets
        self.events = Labelled(
            Counter("bigthree_events_total", "Events published.", ["origin"], registry=r)
        )
        self.ws_connections = Gauge(
            "bigthree_ws_connections", "Open WebSocket connections.", ["stream"], registry=r
        )
        self.ws_dropped = Counter(
            "bigthree_ws_dropped_total",
            "WebSocket subscribers disconnected by the server.",
            ["stream", "reason"],
            registry=r,
        )
        for origin in ("internal", "external"):
            self.events.labels(origin)
        for stream in ("events", "realtime"):
            self.ws_connections.labels(stream)
            self.ws_dropped.labels(stream, "slow_consumer")
        # realtime sessions (tool-call series are started per tool by the realtime service)
        self.realtime_sessions = Counter(
            "bigthree_realtime_sessions_total",
            "Realtime sessions ended, by reason.",
            ["reason"],
            registry=r,
        )
        self.realtime_tool_calls = Counter(
            "bigthree_realtime_tool_calls_total",
            "Tool calls run for realtime sessions, by tool and outcome (ok, error).",
            ["tool", "outcome"],
            registry=r,
        )
        self.realtime_upstream_errors = Counter(
            "bigthree_realtime_upstream_errors_total",
            "Realtime upstream failures: connect (refused or failed), error_event, closed.",
            ["kind"],
            registry=r,
        )
        for reason in REALTIME_END_REASONS:
            self.realtime_sessions.labels(reason)
        for kind in REALTIME_UPSTREAM_ERRORS:
            self.realtime_upstream_errors.labels(kind)


class _Breaker(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> _StateValue: ...


class _StateValue(Protocol):
    @property
    def value(self) -> str: ...


class Gateway(Protocol):
    """What the collector reads from the provider gateway at scrape time."""

    @property
    def names(self) -> list[str]: ...
    def bulkhead_in_use(self, provider: str) -> int: ...
    def breakers(self, provider: str) -> Iterable[_Breaker]: ...


class GatewayCollector(Collector):
    """Breaker states and bulkhead use, read from the gateway when Prometheus scrapes, so
    every breaker is exported from its first call and in-flight counts are exact."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: families are only known at scrape time

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "bigthree_circuit_state",
            "Breaker state: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled.",
            labels=["breaker"],
        )
        in_use = GaugeMetricFamily(
            "bigthree_bulkhead_in_use", "Provider calls in flight.", labels=["provider"]
        )
        for name in self._gateway.names:
            in_use.add_metric([name], self._gateway.bulkhead_in_use(name))
            for breaker in self._gateway.breakers(name):
                state.add_metric([breaker.name], CIRCUIT_STATE_VALUES[breaker.state.value])
        yield state
        yield in_use
