"""Per-request HTTP metrics, keyed by route template.

The same series prometheus-fastapi-instrumentator exported (the dashboard and the alerts
query them): `http_requests_total{handler, method, status}` with the status grouped
(`2xx`), `http_request_duration_seconds{handler, method}` and the unlabelled
`http_request_duration_highr_seconds`. The handler is the matched route's template
(`/v1/tasks/{task_id}`, `none` when nothing matched), read from the scope FastAPI (or the
fast lane) fills in while routing — no second route match, no request object.

Hand-written as a collector rather than prometheus_client's Counter and Histograms: they
take a lock per count, and one request meant five locked updates and a linear bucket search
— with the rest of the per-request layer, more CPU than the task read it counted
(bench/README.md, run 18). A request's figures are plain additions on the event loop's
thread; Prometheus reads them when it scrapes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

# the buckets prometheus-fastapi-instrumentator used, so dashboards keep their meaning
HTTP_BUCKETS = (0.1, 0.5, 1.0)
HTTP_HIGHR_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0),
    *(4.5, 5.0, 7.5, 10.0, 30.0, 60.0),
)
# the probes: neither counted here nor written to the access log
PROBE_PATHS = frozenset({"/health", "/metrics"})


class Latencies:
    """One histogram's state: a count per bucket (the last one past every bound) and the
    sum of what was observed."""

    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect_left(self._bounds, seconds)] += 1  # the first bound >= seconds
        self._sum += seconds

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(str, self._bounds), "+Inf"), self._counts, strict=True):
            total += count
            cumulative.append((bound, total))
        family.add_metric(labels, cumulative, self._sum)


class HttpSeries(Collector):
    """The HTTP series, registered on `registry`; `record` counts one answered request."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests: dict[tuple[str, str, str], int] = {}
        self._by_route: dict[tuple[str, str], Latencies] = {}
        self._all = Latencies(HTTP_HIGHR_BUCKETS)
        registry.register(self)

    def record(self, scope: Scope, status: int, elapsed_s: float) -> None:
        """One answered request: `status` as sent (500 when none was), `elapsed_s` its
        time in the application."""
        handler = getattr(scope.get("route"), "path", None) or "none"
        method = scope["method"]
        counted = (handler, method, f"{status // 100}xx")
        self._requests[counted] = self._requests.get(counted, 0) + 1
        route = self._by_route.get((handler, method))
        if route is None:
            route = self._by_route[handler, method] = Latencies(HTTP_BUCKETS)
        route.observe(elapsed_s)
        self._all.observe(elapsed_s)

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: its series are only known at scrape time

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests, by route template, method and status class.",
            labels=["handler", "method", "status"],
        )
        for labels, count in list(self._requests.items()):
            requests.add_metric(list(labels), count)
        duration = HistogramMetricFamily(
            "http_request_duration_seconds",
            "HTTP request latency, by route template and method.",
            labels=["handler", "method"],
        )
        for route, latencies in list(self._by_route.items()):
            latencies.add_to(duration, list(route))
        highr = HistogramMetricFamily(
            "http_request_duration_highr_seconds", "HTTP request latency, all routes, fine buckets."
        )
        self._all.add_to(highr, [])
        return [requests, duration, highr]
