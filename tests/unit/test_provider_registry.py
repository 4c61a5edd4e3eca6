"""build_providers: one client per vendor, and a fast NotConfigured when a key is missing."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.config import Settings
from app.providers.anthropic import AnthropicProvider
from app.providers.base import CompletionRequest, Message
from app.providers.errors import NotConfigured
from app.providers.gemini import GeminiProvider
from app.providers.openai import OpenAIProvider
from app.providers.registry import MissingKeyProvider, build_providers

REQUEST = CompletionRequest(model="m", messages=[Message("user", "hi")])


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "openai_api_key": None,
        "anthropic_api_key": None,
        "gemini_api_key": None,
        # explicit, so a developer's OPENAI_BASE_URL etc. cannot leak in
        "openai_base_url": "https://api.openai.com/v1",
        "anthropic_base_url": "https://api.anthropic.com",
        "gemini_base_url": "https://generativelanguage.googleapis.com",
    }
    return Settings(_env_file=None, **{**base, **kw})


async def test_keys_build_real_clients_with_their_base_urls() -> None:
    """With keys set, each vendor gets its client at the configured base URL."""
    providers = build_providers(
        settings(openai_api_key="sk-1", anthropic_api_key="sk-ant-1", gemini_api_key="g-1")
    )
    try:
        assert isinstance(providers["openai"], OpenAIProvider)
        assert isinstance(providers["anthropic"], AnthropicProvider)
        assert isinstance(providers["gemini"], GeminiProvider)
        urls = {name: str(p._client.base_url) for name, p in providers.items()}  # type: ignore[attr-defined]
        assert urls == {
            "openai": "https://api.openai.com/v1",
            "anthropic": "https://api.anthropic.com",
            "gemini": "https://generativelanguage.googleapis.com",
        }
    finally:
        for p in providers.values():
            await p.aclose()


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
    ],
)
async def test_missing_key_at_official_url_fails_fast_naming_the_variable(
    name: str, env: str
) -> None:
    """No key + the vendor's own URL: complete() and stream() raise NotConfigured at once."""
    provider = build_providers(settings())[name]
    assert isinstance(provider, MissingKeyProvider)
    with pytest.raises(NotConfigured, match=env) as info:
        await provider.complete(REQUEST, timeout_s=1)
    assert not info.value.retryable and info.value.provider == name
    with pytest.raises(NotConfigured, match=env):
        async for _ in provider.stream(REQUEST, timeout_s=1):
            pass


async def test_missing_key_with_custom_base_url_builds_a_keyless_client() -> None:
    """An OpenAI-compatible server (e.g. Ollama) needs no key: a real client is built."""
    providers = build_providers(settings(openai_base_url="http://127.0.0.1:11434/v1"))
    try:
        openai = providers["openai"]
        assert isinstance(openai, OpenAIProvider)
        assert openai._headers == {}
        assert isinstance(providers["anthropic"], MissingKeyProvider)
    finally:
        for p in providers.values():
            await p.aclose()
