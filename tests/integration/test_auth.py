"""Authentication on every route but /health (and /metrics unless configured)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.conftest import AUTH_KEY, CORS_ORIGIN, provider_env
from tests.support.procs import BIGTHREE, start_service

OPEN = {"/health", "/metrics"}
SAMPLE_PARAMS = {"name": "a1", "task_id": "abc123", "path": "notes.txt", "artifact_id": "def456"}
SAMPLE_BODIES = {
    "/v1/agents": {"name": "a1", "model": "m"},
    "/v1/agents/{name}/tasks": {"prompt": "x"},
    "/v1/events": {"type": "x"},
    "/v1/providers/{name}/breaker": {"action": "reset"},
}


def _http_routes() -> list[tuple[str, str, dict[str, object] | None]]:
    """Every HTTP route in the app's OpenAPI document (plus the document itself), so a new
    route is covered without editing this list."""
    app = create_app(Settings(_env_file=None, api_keys="x" * 16))  # type: ignore[call-arg]
    found: list[tuple[str, str, dict[str, object] | None]] = [("GET", "/openapi.json", None)]
    for path, operations in app.openapi()["paths"].items():
        if path in OPEN:
            continue
        concrete = path.format(**{k: v for k, v in SAMPLE_PARAMS.items() if "{" + k + "}" in path})
        for method in sorted(operations):
            found.append((method.upper(), concrete, SAMPLE_BODIES.get(path)))
    return found


PROTECTED = _http_routes()


def test_route_table_is_not_empty() -> None:
    """The enumeration sees the API (guards against a silently empty parametrization)."""
    paths = {path for _, path, _ in PROTECTED}
    assert {
        "/v1/agents",
        "/v1/events",
        "/v1/providers",
        "/v1/costs",
        "/openapi.json",
        "/ready",
    } <= paths


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_routes_need_a_valid_key(auth_service, method: str, path: str, body) -> None:
    """Without a key, or with a wrong one, every API route answers 401 in the error shape."""
    for headers in (
        {},
        {"Authorization": "Bearer not-the-right-key-at-all"},
        {"Authorization": AUTH_KEY},
    ):
        response = httpx.request(method, auth_service.url + path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"]["type"] == "unauthorized"
    ok = httpx.request(
        method, auth_service.url + path, json=body, headers={"Authorization": f"Bearer {AUTH_KEY}"}
    )
    assert ok.status_code != 401


def test_open_routes(auth_service) -> None:
    """/health and (by default) /metrics need no key; the second configured key works too;
    the Swagger UI is not served once keys are set."""
    assert httpx.get(auth_service.url + "/health").status_code == 200
    assert httpx.get(auth_service.url + "/metrics").status_code == 200
    second = httpx.get(
        auth_service.url + "/v1/agents", headers={"Authorization": "Bearer second-key-0123456789"}
    )
    assert second.status_code == 200
    assert httpx.get(auth_service.url + "/docs").status_code == 404


def test_metrics_can_require_auth(tmp_path, fake_upstream) -> None:
    """BIGTHREE_METRICS_REQUIRE_AUTH=true puts /metrics behind the key."""
    env = {
        **provider_env(fake_upstream.url),
        "BIGTHREE_API_KEYS": AUTH_KEY,
        "BIGTHREE_METRICS_REQUIRE_AUTH": "true",
    }
    proc = start_service(tmp_path, env=env)
    try:
        assert httpx.get(proc.url + "/metrics").status_code == 401
        authed = httpx.get(proc.url + "/metrics", headers={"Authorization": f"Bearer {AUTH_KEY}"})
        assert authed.status_code == 200 and "bigthree_tasks_total" in authed.text
    finally:
        proc.stop()


def test_refuses_public_bind_without_keys(tmp_path) -> None:
    """Asked to bind beyond loopback with no keys, the server exits 2 with a clear message."""
    result = subprocess.run(
        [*BIGTHREE, "serve", "--host", "0.0.0.0", "--port", "8999"],
        env={"PATH": "/usr/bin:/bin", "BIGTHREE_API_KEYS": "", "BIGTHREE_DATA_DIR": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0 without authentication" in result.stderr
    assert "BIGTHREE_API_KEYS" in result.stderr


def test_short_keys_are_refused(tmp_path) -> None:
    """An API key shorter than 16 characters is a configuration error at start-up."""
    result = subprocess.run(
        [*BIGTHREE, "serve", "--port", "8998"],
        env={
            "PATH": "/usr/bin:/bin",
            "BIGTHREE_API_KEYS": "short",
            "BIGTHREE_DATA_DIR": str(tmp_path),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "at least 16 characters" in result.stderr


def test_cors_allows_only_configured_origins(auth_service) -> None:
    """BIGTHREE_CORS_ORIGINS: a listed origin passes the preflight and sees x-request-id;
    another origin gets no CORS grant."""
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = httpx.options(
        auth_service.url + "/v1/agents", headers={"Origin": CORS_ORIGIN, **preflight}
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == CORS_ORIGIN
    other = httpx.options(
        auth_service.url + "/v1/agents", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers
    listed = httpx.get(
        auth_service.url + "/v1/agents",
        headers={"Origin": CORS_ORIGIN, "Authorization": f"Bearer {AUTH_KEY}"},
    )
    assert listed.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "x-request-id" in listed.headers["access-control-expose-headers"]
