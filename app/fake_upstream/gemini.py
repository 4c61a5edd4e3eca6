"""Gemini generateContent: JSON, or `streamGenerateContent` as SSE `data:` events (no [DONE]).

Tool calls are `functionCall` parts with an `id`. A retry hint travels in the error body as
a `google.rpc.RetryInfo` detail. A `functionResponse` turn is answered
`done: <response.result|output|content, or the response as JSON>`.
"""

from __future__ import annotations

import json
from typing import Any

from app.fake_upstream.dialect import as_dict, as_list, sse
from app.fake_upstream.reply import Prompt, Reply, count_words, new_id, pieces
from app.fake_upstream.script import ErrorSpec, StreamErrorSpec

_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The request was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline exceeded."),
}
_CODE_OF = {status: code for code, (status, _msg) in _STATUS.items()}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON form: `2s`, `1.5s`."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0") + "s"


def _response_text(part: dict[str, Any]) -> str:
    response = as_dict(as_dict(part.get("functionResponse")).get("response"))
    for key in ("result", "output", "content"):
        if isinstance(response.get(key), str) and len(response) == 1:
            return str(response[key])
    return json.dumps(response)


def _part_text(part: dict[str, Any]) -> str:
    if "text" in part:
        return str(part["text"])
    if "functionResponse" in part:
        return _response_text(part)
    return ""


class GeminiDialect:
    name = "gemini"
    request_id_header = "x-request-id"
    tool_id_prefix = "fc_"

    def request_id(self) -> str:
        return new_id("req_")

    def read_prompt(self, body: Any) -> Prompt:
        data = as_dict(body)
        contents = [as_dict(c) for c in as_list(data.get("contents"))]
        parts = [[as_dict(p) for p in as_list(c.get("parts"))] for c in contents]
        system = [as_dict(p) for p in as_list(as_dict(data.get("systemInstruction")).get("parts"))]
        roles = [c.get("role", "user") for c in contents]
        users = [ps for role, ps in zip(roles, parts, strict=True) if role == "user"]
        last_user = [p for p in users[-1] if "text" in p] if users else []
        results = [p for p in parts[-1] if "functionResponse" in p] if parts else []
        words = [_part_text(p) for p in system] + [_part_text(p) for ps in parts for p in ps]
        return Prompt(
            last_user_text="".join(_part_text(p) for p in last_user),
            tool_result="\n".join(_part_text(p) for p in results) if results else None,
            input_words=count_words(words),
        )

    def _usage(self, reply: Reply) -> dict[str, Any]:
        usage = {
            "promptTokenCount": reply.input_tokens,
            "candidatesTokenCount": reply.output_tokens,
            "totalTokenCount": reply.input_tokens + reply.output_tokens,
        }
        if reply.cached_input_tokens:
            usage["cachedContentTokenCount"] = reply.cached_input_tokens
        return usage

    def _response(
        self, parts: list[dict[str, Any]], model: str, response_id: str, finish: str | None = None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "modelVersion": model, "responseId": response_id}

    def _calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {"functionCall": {"id": call.id, "name": call.name, "args": call.parsed}}
            for call in reply.tool_calls
        ]

    def render(self, reply: Reply, model: str) -> dict[str, Any]:
        parts = [{"text": reply.text}] if reply.text or not reply.tool_calls else []
        body = self._response(
            parts + self._calls(reply), model, new_id(""), reply.finish_reason or "STOP"
        )
        body["usageMetadata"] = self._usage(reply)
        return body

    def stream_events(self, reply: Reply, model: str, body: Any) -> list[bytes]:
        groups = [[{"text": piece}] for piece in pieces(reply.text)]
        groups += [[call] for call in self._calls(reply)]
        response_id = new_id("")
        events = [self._response(group, model, response_id) for group in groups or [[{"text": ""}]]]
        events[-1]["candidates"][0]["finishReason"] = reply.finish_reason or "STOP"
        events[-1]["usageMetadata"] = self._usage(reply)
        return [sse(event) for event in events]

    def error_body(
        self, status: int, error: ErrorSpec | None, retry_delay_s: float | None, request_id: str
    ) -> dict[str, Any]:
        default = _STATUS[500] if status >= 500 else _STATUS[400]
        kind, message = _STATUS.get(status, default)
        spec = error or ErrorSpec()
        details: list[dict[str, Any]] = []
        if retry_delay_s is not None:
            details.append({"@type": RETRY_INFO, "retryDelay": duration(retry_delay_s)})
        return {
            "error": {
                "code": status,
                "message": spec.message or message,
                "status": spec.type or kind,
                "details": details,
            }
        }

    def stream_error_event(self, spec: StreamErrorSpec, request_id: str) -> bytes:
        status = spec.type or "INTERNAL"
        code = _CODE_OF.get(status, 500)
        message = spec.message or _STATUS.get(code, _STATUS[500])[1]
        return sse({"error": {"code": code, "message": message, "status": status}})
