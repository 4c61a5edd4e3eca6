"""The HTTP series as Prometheus reads them: the same names, labels and cumulative buckets
prometheus_client's own Counter and Histograms exposed."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from app.core.http_metrics import HTTP_HIGHR_BUCKETS, HttpSeries


def scope(method: str, template: str | None) -> dict[str, object]:
    route = SimpleNamespace(path=template) if template else None
    return {"type": "http", "method": method, "path": "/x", "route": route}


def test_requests_are_counted_by_template_method_and_status_class() -> None:
    registry = CollectorRegistry()
    series = HttpSeries(registry)
    series.record(scope("GET", "/v1/t/{id}"), 200, 0.05)
    series.record(scope("GET", "/v1/t/{id}"), 202, 0.1)  # on a bound: counted ≤ it
    series.record(scope("GET", "/v1/t/{id}"), 404, 0.7)
    series.record(scope("POST", None), 500, 2.0)
    lines = set(generate_latest(registry).decode().splitlines())
    assert {
        'http_requests_total{handler="/v1/t/{id}",method="GET",status="2xx"} 2.0',
        'http_requests_total{handler="/v1/t/{id}",method="GET",status="4xx"} 1.0',
        'http_requests_total{handler="none",method="POST",status="5xx"} 1.0',
        'http_request_duration_seconds_bucket{handler="/v1/t/{id}",le="0.1",method="GET"} 2.0',
        'http_request_duration_seconds_bucket{handler="/v1/t/{id}",le="0.5",method="GET"} 2.0',
        'http_request_duration_seconds_bucket{handler="/v1/t/{id}",le="1.0",method="GET"} 3.0',
        'http_request_duration_seconds_bucket{handler="/v1/t/{id}",le="+Inf",method="GET"} 3.0',
        'http_request_duration_seconds_count{handler="/v1/t/{id}",method="GET"} 3.0',
        'http_request_duration_seconds_sum{handler="/v1/t/{id}",method="GET"} 0.85',
        'http_request_duration_seconds_bucket{handler="none",le="1.0",method="POST"} 0.0',
        'http_request_duration_seconds_bucket{handler="none",le="+Inf",method="POST"} 1.0',
        'http_request_duration_highr_seconds_bucket{le="0.05"} 1.0',
        'http_request_duration_highr_seconds_bucket{le="0.1"} 2.0',
        'http_request_duration_highr_seconds_bucket{le="0.75"} 3.0',
        'http_request_duration_highr_seconds_bucket{le="2.0"} 4.0',
        'http_request_duration_highr_seconds_bucket{le="+Inf"} 4.0',
        "http_request_duration_highr_seconds_count 4.0",
    } <= lines
    assert "# TYPE http_requests_total counter" in lines
    assert "# TYPE http_request_duration_seconds histogram" in lines


def test_before_any_request_only_the_unlabelled_histogram_has_series() -> None:
    registry = CollectorRegistry()
    HttpSeries(registry)
    text = generate_latest(registry).decode()
    assert "http_requests_total{" not in text
    assert "http_request_duration_seconds_bucket{" not in text
    buckets = [line for line in text.splitlines() if line.startswith("http_request_duration_highr")]
    assert len([b for b in buckets if "_bucket{" in b]) == len(HTTP_HIGHR_BUCKETS) + 1
    assert all(line.endswith(" 0.0") for line in buckets)
