"""Anthropic Messages API client: `POST {base}/v1/messages`, plain or streamed.

`base_url` follows the Anthropic SDK convention and has no `/v1` (`https://api.anthropic.com`).
Headers: `x-api-key`, `anthropic-version`. The JSON mapping is in
`app.providers.anthropic_wire`, the SSE folding in `app.providers.anthropic_stream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from app.providers.anthropic_stream import stream_messages
from app.providers.anthropic_wire import (
    MESSAGES_PATH,
    error_from_response,
    parse_completion,
    request_json,
)
from app.providers.base import Completion, CompletionRequest, StreamEvent
from app.providers.http import HttpClient, parse_json, translate_transport_errors

__all__ = ["AnthropicProvider"]


class AnthropicProvider:
    def __init__(
        self,
        client: HttpClient,
        *,
        api_key: str | None,
        name: str = "anthropic",
        anthropic_version: str = "2023-06-01",
        default_max_tokens: int = 4096,
    ) -> None:
        self.name = name
        self._client = client
        self._default_max_tokens = default_max_tokens
        self._headers = {"anthropic-version": anthropic_version}
        if api_key:
            self._headers["x-api-key"] = api_key

    def _body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        return request_json(request, default_max_tokens=self._default_max_tokens, stream=stream)

    async def complete(self, request: CompletionRequest, *, timeout_s: float | None) -> Completion:
        body = self._body(request, stream=False)
        with translate_transport_errors(self.name):
            response = await self._client.post(MESSAGES_PATH, json=body, headers=self._headers)
        request_id = response.headers.get("request-id")
        if response.status_code >= 400:
            raise error_from_response(
                self.name, response.status_code, response.headers, response.text
            )
        data = parse_json(self.name, response.text, request_id)
        return parse_completion(data, request_id, self.name)

    async def stream(
        self, request: CompletionRequest, *, timeout_s: float | None
    ) -> AsyncIterator[StreamEvent]:
        body = self._body(request, stream=True)
        with translate_transport_errors(self.name):
            async with (
                self._client.stream(
                    "POST", MESSAGES_PATH, json=body, headers=self._headers
                ) as response,
            ):
                async for event in stream_messages(self.name, response, request.model):
                    yield event

    async def aclose(self) -> None:
        await self._client.aclose()
