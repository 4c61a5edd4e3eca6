"""Build the configured providers once, each with its own pooled HTTP client (aiohttp).

A vendor whose API key is not set, at its official base URL, becomes a `MissingKeyProvider`:
every call fails at once with `NotConfigured` naming the variable to set, instead of a round
trip that ends in a 401. With a custom base URL (an OpenAI-compatible server such as Ollama,
vLLM or llama.cpp; a proxy; the fake upstream) a missing key is fine: the client is built and
sends no key header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from app.core.config import Settings, env_name
from app.providers.anthropic import AnthropicProvider
from app.providers.base import Completion, CompletionRequest, Provider, StreamEvent
from app.providers.errors import NotConfigured
from app.providers.gemini import GeminiProvider
from app.providers.http import HttpClient, make_client
from app.providers.openai import OpenAIProvider
from app.resilience.timeouts import Timeouts

PROVIDER_NAMES = ("openai", "anthropic", "gemini")

_Factory = Callable[[HttpClient, str | None], Provider]

_FACTORIES: dict[str, _Factory] = {
    "openai": lambda client, key: OpenAIProvider(client, api_key=key),
    "anthropic": lambda client, key: AnthropicProvider(client, api_key=key),
    "gemini": lambda client, key: GeminiProvider(client, api_key=key),
}


class MissingKeyProvider:
    """Stands in for a vendor whose key is missing: each call raises NotConfigured."""

    def __init__(self, name: str, *, env_var: str, base_url_env_var: str) -> None:
        self.name = name
        self.env_var = env_var
        self._message = (
            f"provider {name!r} is not configured: set {env_var} "
            f"(or set {base_url_env_var} to a server that needs no key)"
        )

    def _error(self) -> NotConfigured:
        return NotConfigured(self._message, provider=self.name)

    async def complete(self, request: CompletionRequest, *, timeout_s: float | None) -> Completion:
        raise self._error()

    async def stream(
        self, request: CompletionRequest, *, timeout_s: float | None
    ) -> AsyncIterator[StreamEvent]:
        raise self._error()
        yield  # pragma: no cover - makes this an async generator like the real providers

    async def aclose(self) -> None:
        return None


def default_base_url(name: str) -> str:
    default = Settings.model_fields[f"{name}_base_url"].default
    assert isinstance(default, str)
    return default


def timeouts_from(settings: Settings) -> Timeouts:
    return Timeouts(
        connect=settings.provider_connect_timeout_s,
        read=settings.provider_read_timeout_s,
        write=settings.provider_write_timeout_s,
        pool=settings.provider_pool_timeout_s,
    )


def build_provider(name: str, settings: Settings, timeouts: Timeouts) -> Provider:
    base_url: str = getattr(settings, f"{name}_base_url")
    secret = getattr(settings, f"{name}_api_key")
    key: str | None = secret.get_secret_value() if secret is not None else None
    if not key and base_url.rstrip("/") == default_base_url(name).rstrip("/"):
        return MissingKeyProvider(
            name,
            env_var=env_name(f"{name}_api_key"),
            base_url_env_var=env_name(f"{name}_base_url"),
        )
    client = make_client(base_url, timeouts, settings.provider_max_connections)
    return _FACTORIES[name](client, key or None)


def build_providers(settings: Settings, timeouts: Timeouts | None = None) -> dict[str, Provider]:
    """One provider per vendor name ("openai", "anthropic", "gemini"); close each with aclose."""
    bounds = timeouts if timeouts is not None else timeouts_from(settings)
    return {name: build_provider(name, settings, bounds) for name in PROVIDER_NAMES}
