"""Gemini generateContent JSON (lowerCamelCase) to and from the common provider shapes.

  - role="system" messages → `systemInstruction`; user → role "user"; assistant → role "model"
    with `functionCall` parts; role="tool" → `functionResponse` parts in a "user" turn
    (consecutive results share one turn, as parallel calls require). A functionResponse needs
    the function name: `Message.tool_name`, else the name of the call it answers.
  - A tool result with `Message.result` sends that object as the `response` (else
    `{"result"|"error": content}`); its `Message.images` travel as `inlineData` parts inside
    the functionResponse (base64), as computer use requires for screenshots.
  - `CompletionRequest.computer_use` adds the predefined `computerUse` tool
    (`ENVIRONMENT_BROWSER`) next to any function declarations.
  - A functionCall part's `thoughtSignature` is kept in `ToolCall.extra` and sent back on the
    same part, unchanged (required by Gemini 3 for function calling).
  - Tool call ids: the part's `id` when Gemini sends one; otherwise a stable id derived from
    the response id, position, name and arguments, prefixed `SYNTHETIC_ID_PREFIX` and never
    sent back to Gemini (it did not issue it).
  - Usage: `promptTokenCount` (+ `toolUsePromptTokenCount`) in, `candidatesTokenCount` +
    `thoughtsTokenCount` out, `cachedContentTokenCount` (a part of the prompt) cached.
Errors are mapped in `app.providers.gemini_errors`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.providers import errors as pe
from app.providers.base import (
    Completion,
    CompletionRequest,
    ComputerUse,
    FinishReason,
    Message,
    ToolCall,
    Usage,
)

SYNTHETIC_ID_PREFIX = "gemini_call_"
THOUGHT_SIGNATURE = "thoughtSignature"

FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "other",
}

_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_ENVIRONMENT = {"browser": "ENVIRONMENT_BROWSER"}


def model_path(api_version: str, model: str, method: str) -> str:
    return f"/{api_version}/models/{model.removeprefix('models/')}:{method}"


def _call_part(call: ToolCall) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": call.name, "args": dict(call.arguments)}
    if call.id and not call.id.startswith(SYNTHETIC_ID_PREFIX):
        fn["id"] = call.id
    part: dict[str, Any] = {"functionCall": fn}
    signature = call.extra.get(THOUGHT_SIGNATURE)
    if signature:
        part[THOUGHT_SIGNATURE] = signature
    return part


def _response_part(message: Message, calls: Mapping[str, ToolCall]) -> dict[str, Any]:
    answered = calls.get(message.tool_call_id or "")
    name = message.tool_name or (answered.name if answered else "")
    if message.result is not None:
        response = dict(message.result)
    else:
        response = {"error" if message.is_error else "result": message.content or ""}
    fn: dict[str, Any] = {"name": name, "response": response}
    if message.tool_call_id and not message.tool_call_id.startswith(SYNTHETIC_ID_PREFIX):
        fn["id"] = message.tool_call_id
    if message.images:
        fn["parts"] = [
            {
                "inlineData": {
                    "mimeType": image.mime_type,
                    "data": base64.b64encode(image.data).decode("ascii"),
                }
            }
            for image in message.images
        ]
    return {"functionResponse": fn}


def _tools(request: CompletionRequest) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if request.computer_use is not None:
        tools.append({"computerUse": _computer_use(request.computer_use)})
    if request.tools:
        declarations = [
            {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
            for t in request.tools
        ]
        tools.append({"functionDeclarations": declarations})
    return tools


def _computer_use(tool: ComputerUse) -> dict[str, Any]:
    spec: dict[str, Any] = {"environment": _ENVIRONMENT[tool.environment]}
    if tool.excluded_actions:
        spec["excludedPredefinedFunctions"] = list(tool.excluded_actions)
    return spec


def _turn(message: Message, calls: Mapping[str, ToolCall]) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        return "user", [_response_part(message, calls)]
    parts: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
    if message.role == "assistant":
        return "model", parts + [_call_part(c) for c in message.tool_calls]
    return "user", parts


def request_json(request: CompletionRequest) -> dict[str, Any]:
    calls = {c.id: c for m in request.messages for c in m.tool_calls}
    system = [m.content for m in request.messages if m.role == "system" and m.content]
    contents: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role, parts = _turn(message, calls)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
        if request.tool_choice:
            body["toolConfig"] = {"functionCallingConfig": {"mode": _MODE[request.tool_choice]}}
    generation: dict[str, Any] = {}
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.max_output_tokens is not None:
        generation["maxOutputTokens"] = request.max_output_tokens
    if generation:
        body["generationConfig"] = generation
    return body


def _synthetic_id(response_id: str, index: int, name: str, args: Any) -> str:
    seed = json.dumps([response_id, index, name, args], sort_keys=True, default=str)
    return SYNTHETIC_ID_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:16]


def tool_calls(parts: Sequence[Mapping[str, Any]], response_id: str) -> tuple[ToolCall, ...]:
    """ToolCalls from the `functionCall` parts of a model turn, in order."""
    calls: list[ToolCall] = []
    for index, part in enumerate(p for p in parts if isinstance(p.get("functionCall"), dict)):
        fn = part["functionCall"]
        name, args = str(fn.get("name") or ""), fn.get("args")
        call_id = str(fn.get("id") or "") or _synthetic_id(response_id, index, name, args)
        signature = part.get(THOUGHT_SIGNATURE) or fn.get(THOUGHT_SIGNATURE)
        extra = {THOUGHT_SIGNATURE: signature} if signature else {}
        if args is None:
            args = {}
        if not isinstance(args, dict):
            calls.append(
                ToolCall(call_id, name, {}, json.dumps(args), "args is not a JSON object", extra)
            )
            continue
        calls.append(ToolCall(call_id, name, args, json.dumps(args), extra=extra))
    return tuple(calls)


def visible_text(parts: Iterable[Mapping[str, Any]]) -> str:
    """The answer text: text parts that are not thought summaries."""
    return "".join(str(p["text"]) for p in parts if p.get("text") and not p.get("thought"))


def finish_reason(raw: str | None, has_calls: bool) -> FinishReason:
    mapped = FINISH.get(raw or "")
    if has_calls and mapped != "content_filter":
        return "tool_calls"  # Gemini has no tool-call finish reason: STOP plus functionCall parts
    return mapped or "other"


def parse_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    return Usage(
        input_tokens=int(data.get("promptTokenCount") or 0)
        + int(data.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(data.get("candidatesTokenCount") or 0)
        + int(data.get("thoughtsTokenCount") or 0),
        cached_input_tokens=int(data.get("cachedContentTokenCount") or 0),
    )


def first_candidate(data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(parts, finishReason) of the first candidate; a blocked prompt has no candidate."""
    candidates = data.get("candidates") or []
    if not candidates:
        feedback = data.get("promptFeedback") or {}
        return [], feedback.get("blockReason")
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    if not all(isinstance(p, dict) for p in parts):
        raise TypeError("parts must be objects")
    return list(parts), candidate.get("finishReason")


def build_completion(
    parts: Sequence[Mapping[str, Any]],
    raw_finish: str | None,
    *,
    blocked: bool,
    usage: Usage,
    model: str,
    response_id: str,
) -> Completion:
    calls = tool_calls(parts, response_id)
    return Completion(
        text=visible_text(parts),
        tool_calls=calls,
        finish_reason="content_filter" if blocked else finish_reason(raw_finish, bool(calls)),
        usage=usage,
        model=model,
        request_id=response_id or None,
        raw_finish_reason=raw_finish,
    )


def parse_completion(data: Any, model: str, provider: str) -> Completion:
    try:
        parts, raw_finish = first_candidate(data)
        blocked = not data.get("candidates") and raw_finish is not None
        response_id = str(data.get("responseId") or "")
        model = str(data.get("modelVersion") or model)
    except (KeyError, TypeError, AttributeError) as exc:
        raise pe.unexpected_shape(provider, exc) from exc
    return build_completion(
        parts,
        raw_finish,
        blocked=blocked,
        usage=parse_usage(data.get("usageMetadata")),
        model=model,
        response_id=response_id,
    )
