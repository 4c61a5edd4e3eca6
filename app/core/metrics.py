"""Every Prometheus metric the service exports, in one place, on one registry per app.

A registry per app (not the process-global one) keeps several apps in one process (tests,
benchmarks) from colliding. Breaker state and bulkhead use are read live at scrape time by
`app.agents.telemetry.GatewayCollector`. Label values are bounded: providers and outcomes
are closed sets, models pass through `BoundedLabel` so a client cannot mint unlimited series.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from app import __version__

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

# the task writes retried through a transient store error (see app/store/transient.py)
STORE_WRITE_OPERATIONS = ("task_running", "task_finished", "task_unstarted")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.model_label = BoundedLabel()
        Info("bigthree_build", "Service build information.", registry=r).info(
            {"version": __version__}
        )
        # tasks and agents
        self.tasks_submitted = Counter(
            "bigthree_tasks_submitted_total", "Tasks accepted.", ["kind"], registry=r
        )
        self.tasks_finished = Counter(
            "bigthree_tasks_total", "Tasks finished, by outcome.", ["kind", "outcome"], registry=r
        )
        self.task_duration = Histogram(
            "bigthree_task_duration_seconds",
            "Task run time from start to finish.",
            ["kind", "outcome"],
            buckets=TASK_BUCKETS,
            registry=r,
        )
        self.task_queue_wait = Histogram(
            "bigthree_task_queue_wait_seconds",
            "Time tasks spent queued before running.",
            ["kind"],
            buckets=TASK_BUCKETS,
            registry=r,
        )
        self.tasks_queued = Gauge("bigthree_tasks_queued", "Tasks waiting to run.", registry=r)
        self.tasks_running = Gauge("bigthree_tasks_running", "Tasks running now.", registry=r)
        self.agents = Gauge("bigthree_agents", "Registered agents (not deleted).", registry=r)
        self.draining = Gauge("bigthree_draining", "1 while shutting down.", registry=r)
        # providers
        self.llm_requests = Counter(
            "bigthree_llm_requests_total",
            "Provider calls (each attempt), by outcome.",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.llm_duration = Histogram(
            "bigthree_llm_request_duration_seconds",
            "Provider call latency (each attempt).",
            ["provider", "model"],
            buckets=LLM_BUCKETS,
            registry=r,
        )
        self.llm_retries = Counter(
            "bigthree_llm_retries_total", "Retries scheduled.", ["provider", "reason"], registry=r
        )
        self.llm_tokens = Counter(
            "bigthree_llm_tokens_total",
            "Tokens used, by direction.",
            ["provider", "model", "direction"],
            registry=r,
        )
        self.llm_cost = Counter(
            "bigthree_llm_cost_usd_total", "Priced cost in USD.", ["provider", "model"], registry=r
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
        self.tool_calls = Counter(
            "bigthree_tool_calls_total",
            "Tool calls run by coder and orchestrator agents, by outcome (ok or error).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("ok", "error"):
            self.tool_calls.labels(outcome)
        self.store_write_retries = Counter(
            "bigthree_store_write_retries_total",
            "Store writes retried after a transient database error (locked file, lost link).",
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
        # events and websockets
        self.events = Counter("bigthree_events_total", "Events published.", ["origin"], registry=r)
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
