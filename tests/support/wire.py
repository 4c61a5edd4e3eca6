"""What a request to the fake upstream sent back as tool results, per wire protocol."""

from __future__ import annotations

from typing import Any


def tool_results(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """call id -> what the request sent back as that call's result, per wire protocol."""
    if provider == "openai":
        return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}
    if provider == "anthropic":
        return {
            block["tool_use_id"]: (block["content"], block.get("is_error", False))
            for message in body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        }
    return {
        part["functionResponse"]["id"]: (
            part["functionResponse"]["name"],
            part["functionResponse"]["response"],
        )
        for content in body["contents"]
        for part in content["parts"]
        if "functionResponse" in part
    }
