"""Shared fixtures: a real fake-upstream process and a real service process, on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.support.procs import Proc, start_fake_upstream, start_service
from tests.support.servers import postgres_database, stop_private_servers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_fake_upstream(tmp_path_factory.mktemp("fake-upstream"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def fake(fake_upstream: Proc) -> FakeUpstreamClient:
    return FakeUpstreamClient(fake_upstream.url)


def provider_env(fake_url: str) -> dict[str, str]:
    """Point every provider at the fake upstream, with fast retries for tests."""
    return {
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "ANTHROPIC_BASE_URL": fake_url,
        "GEMINI_BASE_URL": fake_url,
        "BIGTHREE_RETRY_INITIAL_BACKOFF_S": "0.01",
        "BIGTHREE_RETRY_MAX_BACKOFF_S": "0.05",
    }


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    """One shared service for tests that only need defaults (use unique agent and model names).

    Its tests inject outages into their own models, so two settings keep them apart: one
    breaker per provider/model (else a few failing tests open the shared `openai` breaker
    for every later test) and a retry-budget floor no test run can spend.
    """
    env = {
        **provider_env(fake_upstream.url),
        "BIGTHREE_BREAKER_PER_MODEL": "true",
        "BIGTHREE_RETRY_BUDGET_MIN_PER_S": "1000",
    }
    proc = start_service(tmp_path_factory.mktemp("service"), env=env)
    yield proc
    proc.stop()


AUTH_KEY = "test-key-0123456789abcdef"
CORS_ORIGIN = "https://dash.example"


@pytest.fixture(scope="session")
def auth_service(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    """A service with an API key configured."""
    env = {
        **provider_env(fake_upstream.url),
        "BIGTHREE_API_KEYS": f"{AUTH_KEY},second-key-0123456789",
        "BIGTHREE_CORS_ORIGINS": CORS_ORIGIN,
    }
    proc = start_service(tmp_path_factory.mktemp("auth-service"), env=env)
    yield proc
    proc.stop()


@pytest.fixture
def client(service: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=10.0) as http:
        yield http


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def _private_servers() -> Iterator[None]:
    """Stop the private PostgreSQL / Redis instances tests started, if any, at the end."""
    yield
    stop_private_servers()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own on each engine the store supports."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of the test's own."""
    with postgres_database() as url:
        yield url
