"""OpenAI Chat Completions: `POST /v1/chat/completions`, JSON or SSE chunks ending `[DONE]`."""

from __future__ import annotations

import time
from typing import Any

from app.fake_upstream.dialect import as_dict, as_list, sse, text_of
from app.fake_upstream.reply import Prompt, Reply, count_words, new_id, pieces, split_in
from app.fake_upstream.script import ErrorSpec, StreamErrorSpec

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to use this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflicting request."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_SERVER_ERROR = ("server_error", None, "The server had an error while processing your request.")


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_input_tokens},
    }


class OpenAIDialect:
    name = "openai"
    request_id_header = "x-request-id"
    tool_id_prefix = "call_"

    def request_id(self) -> str:
        return new_id("req_")

    def read_prompt(self, body: Any) -> Prompt:
        messages = [as_dict(m) for m in as_list(as_dict(body).get("messages"))]
        users = [m for m in messages if m.get("role") == "user"]
        last = messages[-1] if messages else {}
        return Prompt(
            last_user_text=text_of(users[-1].get("content")) if users else "",
            tool_result=text_of(last.get("content")) if last.get("role") == "tool" else None,
            input_words=count_words(text_of(m.get("content")) for m in messages),
        )

    def render(self, reply: Reply, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
        if reply.tool_calls:
            message["content"] = reply.text or None
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(reply)}
            ],
            "usage": _usage(reply),
        }

    def stream_events(self, reply: Reply, model: str, body: Any) -> list[bytes]:
        include_usage = bool(as_dict(as_dict(body).get("stream_options")).get("include_usage"))
        base: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse({**base, "choices": [choice]})

        first = {"role": "assistant", "content": "" if reply.text else None, "refusal": None}
        events = [chunk(first)]
        events += [chunk({"content": piece}) for piece in pieces(reply.text)]
        for index, call in enumerate(reply.tool_calls):
            opening = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [opening]}))
            events += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in split_in(call.arguments, 3)
                if piece
            ]
        events.append(chunk({}, _finish(reply)))
        if include_usage:
            events.append(sse({**base, "choices": [], "usage": _usage(reply)}))
        events.append(sse("[DONE]"))
        return events

    def error_body(
        self, status: int, error: ErrorSpec | None, retry_delay_s: float | None, request_id: str
    ) -> dict[str, Any]:
        kind, code, message = _ERRORS.get(status, _SERVER_ERROR if status >= 500 else _ERRORS[400])
        spec = error or ErrorSpec()
        return {
            "error": {
                "message": spec.message or message,
                "type": spec.type or kind,
                "param": None,
                "code": spec.code if spec.code is not None else code,
            }
        }

    def stream_error_event(self, spec: StreamErrorSpec, request_id: str) -> bytes:
        kind, _code, message = _SERVER_ERROR
        error = {
            "message": spec.message or message,
            "type": spec.type or kind,
            "param": None,
            "code": None,
        }
        return sse({"error": error})
