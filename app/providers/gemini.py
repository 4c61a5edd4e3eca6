"""Gemini API client: `POST {base}/{api_version}/models/{model}:generateContent`, or
`:streamGenerateContent?alt=sse` for a stream. Header `x-goog-api-key`.

`base_url` has no version (`https://generativelanguage.googleapis.com`). Each SSE `data:` event
is a whole GenerateContentResponse chunk: text parts are pieces to join, functionCall parts
arrive whole, usageMetadata and finishReason come with the last chunks; there is no `[DONE]`.
The JSON mapping is in `app.providers.gemini_wire`, errors in `app.providers.gemini_errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.providers import errors as pe
from app.providers.base import Completion, CompletionRequest, StreamDone, StreamEvent, TextDelta
from app.providers.gemini_errors import error_from_body, error_from_response, error_object
from app.providers.gemini_wire import (
    build_completion,
    first_candidate,
    model_path,
    parse_completion,
    parse_usage,
    request_json,
    visible_text,
)
from app.providers.http import HttpClient, iter_sse, parse_json, translate_transport_errors

__all__ = ["GeminiProvider"]


@dataclass(slots=True)
class GeminiStream:
    """Folds streamed GenerateContentResponse chunks; `feed` returns the new text."""

    provider: str
    model: str
    parts: list[dict[str, Any]] = field(default_factory=list)
    usage_data: Any = None
    finish: str | None = None
    blocked: bool = False
    response_id: str = ""

    def feed(self, chunk: Any) -> str:
        if not isinstance(chunk, dict):
            raise pe.MalformedResponse(
                f"{self.provider}: stream chunk is not an object", provider=self.provider
            )
        if error_object(chunk):
            raise error_from_body(self.provider, None, chunk)
        try:
            parts, finish = first_candidate(chunk)
        except (TypeError, AttributeError) as exc:
            raise pe.MalformedResponse(
                f"{self.provider}: unexpected chunk shape ({exc!r})", provider=self.provider
            ) from exc
        if not chunk.get("candidates") and finish is not None:
            self.blocked = True
        self.finish = finish or self.finish
        self.usage_data = chunk.get("usageMetadata") or self.usage_data
        self.model = str(chunk.get("modelVersion") or self.model)
        self.response_id = str(chunk.get("responseId") or self.response_id)
        self.parts.extend(p for p in parts if "functionCall" in p)
        text = visible_text(parts)
        if text:
            self.parts.append({"text": text})
        return text

    def completion(self) -> Completion:
        if self.finish is None:
            raise pe.MalformedResponse(
                f"{self.provider}: stream ended without a finishReason", provider=self.provider
            )
        return build_completion(
            self.parts,
            self.finish,
            blocked=self.blocked,
            usage=parse_usage(self.usage_data),
            model=self.model,
            response_id=self.response_id,
        )


class GeminiProvider:
    def __init__(
        self,
        client: HttpClient,
        *,
        api_key: str | None,
        name: str = "gemini",
        api_version: str = "v1beta",
    ) -> None:
        self.name = name
        self._client = client
        self._api_version = api_version
        self._headers = {"x-goog-api-key": api_key} if api_key else {}

    async def complete(self, request: CompletionRequest, *, timeout_s: float | None) -> Completion:
        path = model_path(self._api_version, request.model, "generateContent")
        with translate_transport_errors(self.name):
            response = await self._client.post(
                path, json=request_json(request), headers=self._headers
            )
        if response.status_code >= 400:
            raise error_from_response(
                self.name, response.status_code, response.headers, response.text
            )
        data = parse_json(self.name, response.text, None)
        return parse_completion(data, request.model, self.name)

    async def stream(
        self, request: CompletionRequest, *, timeout_s: float | None
    ) -> AsyncIterator[StreamEvent]:
        path = model_path(self._api_version, request.model, "streamGenerateContent")
        state = GeminiStream(self.name, request.model)
        with translate_transport_errors(self.name):
            async with (
                self._client.stream(
                    "POST",
                    path,
                    params={"alt": "sse"},
                    json=request_json(request),
                    headers=self._headers,
                ) as response,
            ):
                if response.status_code >= 400:
                    raw = (await response.aread()).decode(errors="replace")
                    raise error_from_response(
                        self.name, response.status_code, response.headers, raw
                    )
                async for _event, data in iter_sse(response):
                    text = state.feed(parse_json(self.name, data, None))
                    if text:
                        yield TextDelta(text)
        yield StreamDone(state.completion())

    async def aclose(self) -> None:
        await self._client.aclose()
