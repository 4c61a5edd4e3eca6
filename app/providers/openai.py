"""OpenAI Chat Completions (and any OpenAI-compatible server: vLLM, Ollama, llama.cpp).

`base_url` follows the OpenAI SDK convention and includes `/v1`
(`https://api.openai.com/v1`, `http://localhost:11434/v1`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from app.providers import errors as pe
from app.providers.base import (
    Completion,
    CompletionRequest,
    FinishReason,
    Message,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
)
from app.providers.http import HttpClient, iter_sse, parse_json, translate_transport_errors

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _message_json(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    body: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        body["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.raw_arguments or json.dumps(dict(call.arguments)),
                },
            }
            for call in message.tool_calls
        ]
    return body


def request_json(request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message_json(m) for m in request.messages],
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            }
            for t in request.tools
        ]
        if request.tool_choice:
            body["tool_choice"] = request.tool_choice
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def parse_tool_call(call_id: str, name: str, raw: str) -> ToolCall:
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError as exc:
        return ToolCall(call_id, name, {}, raw, arguments_error=f"arguments are not JSON: {exc}")
    if not isinstance(parsed, dict):
        return ToolCall(call_id, name, {}, raw, arguments_error="arguments are not a JSON object")
    return ToolCall(call_id, name, parsed, raw)


def parse_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cached_input_tokens=int(details.get("cached_tokens") or 0),
    )


def parse_completion(data: Any, request_id: str | None, provider: str) -> Completion:
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        calls = tuple(
            parse_tool_call(
                c.get("id") or f"call_{i}",
                c["function"]["name"],
                c["function"].get("arguments") or "",
            )
            for i, c in enumerate(message.get("tool_calls") or [])
        )
        raw_finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError) as exc:
        raise pe.unexpected_shape(provider, exc, request_id) from exc
    return Completion(
        text=message.get("content") or "",
        tool_calls=calls,
        finish_reason=_FINISH.get(raw_finish or "", "tool_calls" if calls else "other"),
        usage=parse_usage(data.get("usage")),
        model=str(data.get("model") or ""),
        request_id=request_id,
        raw_finish_reason=raw_finish,
    )


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], text: str
) -> pe.ProviderError:
    request_id = headers.get("x-request-id")
    message, code = text[:500], None
    try:
        err = json.loads(text).get("error") or {}
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            code = err.get("code") or err.get("type")
        elif isinstance(err, str):
            message = err
    except (ValueError, AttributeError):
        pass
    cls = pe.error_for_status(status, code=code)
    retryable: bool | None = None
    should = headers.get("x-should-retry")
    if should in {"true", "false"} and cls is not pe.QuotaExhausted:
        retryable = should == "true"
    return cls(
        f"{provider} HTTP {status}: {message}",
        provider=provider,
        status=status,
        request_id=request_id,
        retry_after_s=pe.parse_retry_after(headers),
        retryable=retryable,
    )


class OpenAIProvider:
    def __init__(self, client: HttpClient, *, api_key: str | None, name: str = "openai") -> None:
        self.name = name
        self._client = client
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    async def complete(self, request: CompletionRequest, *, timeout_s: float | None) -> Completion:
        body = request_json(request, stream=False)
        with translate_transport_errors(self.name):
            response = await self._client.post(
                "/chat/completions", json=body, headers=self._headers
            )
        request_id = response.headers.get("x-request-id")
        if response.status_code >= 400:
            raise error_from_response(
                self.name, response.status_code, response.headers, response.text
            )
        return parse_completion(
            parse_json(self.name, response.text, request_id), request_id, self.name
        )

    async def stream(
        self, request: CompletionRequest, *, timeout_s: float | None
    ) -> AsyncIterator[StreamEvent]:
        body = request_json(request, stream=True)
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage, finish, model = Usage(), None, request.model
        with translate_transport_errors(self.name):
            async with (
                self._client.stream(
                    "POST", "/chat/completions", json=body, headers=self._headers
                ) as response,
            ):
                request_id = response.headers.get("x-request-id")
                if response.status_code >= 400:
                    raw = (await response.aread()).decode(errors="replace")
                    raise error_from_response(
                        self.name, response.status_code, response.headers, raw
                    )
                async for _event, data in iter_sse(response):
                    if data == "[DONE]":
                        break
                    chunk = parse_json(self.name, data, request_id)
                    if "error" in chunk:
                        raise error_from_response(self.name, 500, response.headers, data)
                    model = chunk.get("model") or model
                    if chunk.get("usage"):
                        usage = parse_usage(chunk["usage"])
                    for choice in chunk.get("choices") or []:
                        finish = choice.get("finish_reason") or finish
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            text.append(delta["content"])
                            yield TextDelta(delta["content"])
                        for frag in delta.get("tool_calls") or []:
                            slot = calls.setdefault(
                                int(frag.get("index", 0)), {"id": "", "name": "", "args": ""}
                            )
                            fn = frag.get("function") or {}
                            slot["id"] = frag.get("id") or slot["id"]
                            slot["name"] = fn.get("name") or slot["name"]
                            slot["args"] += fn.get("arguments") or ""
        tool_calls = tuple(
            parse_tool_call(s["id"] or f"call_{i}", s["name"], s["args"])
            for i, s in sorted(calls.items())
        )
        yield StreamDone(
            Completion(
                text="".join(text),
                tool_calls=tool_calls,
                finish_reason=_FINISH.get(finish or "", "tool_calls" if tool_calls else "other"),
                usage=usage,
                model=model,
                request_id=request_id,
                raw_finish_reason=finish,
            )
        )

    async def aclose(self) -> None:
        await self._client.aclose()
