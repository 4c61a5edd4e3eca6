"""A Claude Code run's reports → events, usage and the task's outcome (no CLI, no SDK)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.agents.kinds.base import TaskFailed
from app.agents.kinds.claude_code.outcome import RunResult, StreamedUsage
from app.agents.kinds.claude_code.policy import ToolPolicy
from app.agents.kinds.claude_code.translate import RunRecorder
from app.agents.schemas import ClaudeCodeOptions
from app.events.schemas import EventIn
from app.providers import errors as pe
from app.providers.base import Usage


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.hooks: list[EventIn] = []

    def emit(self, type_: str, payload: dict[str, Any]) -> None:
        self.events.append((type_, payload))

    def hook(self, body: EventIn) -> None:
        self.events.append((body.event_type, body.event_payload()))
        self.hooks.append(body)

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


def recorder(tmp_path: Path, sink: Sink, stream: bool = False) -> RunRecorder:
    policy = ToolPolicy.for_agent(ClaudeCodeOptions(), tmp_path, allow_bash=False)
    return RunRecorder(
        agent="dev1",
        task_id="t1",
        policy=policy,
        emit=sink.emit,
        emit_hook=sink.hook,
        emit_delta=sink.emit if stream else None,
    )


def pre_tool_use(tmp_path: Path, call_id: str = "toolu_1") -> dict[str, Any]:
    return {
        "hook_event_name": "PreToolUse",
        "session_id": "s-1",
        "tool_name": "Write",
        "tool_use_id": call_id,
        "tool_input": {"file_path": str(tmp_path / "a.txt"), "content": "x" * 5000},
    }


def test_tool_call_comes_once_and_first_whichever_reports_it_first(tmp_path: Path) -> None:
    """The hook may run before the assistant message is read, or after: either way one
    tool.call, before the PreToolUse event, then PostToolUse and tool.result."""
    for hook_first in (True, False):
        sink = Sink()
        rec = recorder(tmp_path, sink)
        rec.assistant_message("msg_1", None)
        use = pre_tool_use(tmp_path)
        if hook_first:
            rec.hook(use)
            rec.tool_use("toolu_1", "Write", use["tool_input"], None)
        else:
            rec.tool_use("toolu_1", "Write", use["tool_input"], None)
            rec.hook(use)
        rec.hook({**use, "hook_event_name": "PostToolUse", "tool_response": {}})
        rec.tool_result("toolu_1", False, [{"type": "text", "text": "written"}])
        assert sink.types() == ["tool.call", "PreToolUse", "PostToolUse", "tool.result"]
        call = sink.events[0][1]
        assert (call["tool"], call["call_id"], call["step"]) == ("Write", "toolu_1", 1)
        assert sink.events[3][1]["content"] == "written"
        assert rec.files_changed == ["a.txt"]


def test_hook_events_take_the_post_v1_events_shape(tmp_path: Path) -> None:
    """A hook callback becomes the event POST /v1/events makes of a Claude Code hook:
    source claude_code, type = the hook name, the session id, long strings cut."""
    sink = Sink()
    recorder(tmp_path, sink).hook(pre_tool_use(tmp_path))
    body = sink.hooks[0]
    assert (body.event_source, body.event_type, body.session_id) == (
        "claude_code",
        "PreToolUse",
        "s-1",
    )
    assert (body.agent, body.task_id) == ("dev1", "t1")
    content = body.payload["tool_input"]["content"]
    assert len(content) < 2100 and content.endswith("more chars]")
    assert "client_timestamp_ms" in body.event_payload()


def test_refusals_are_events(tmp_path: Path) -> None:
    """A tool outside the set (refused by Claude Code itself) and a path outside the
    workspace (refused by the hook) each give one permission.denied event."""
    sink = Sink()
    rec = recorder(tmp_path, sink)
    rec.tool_use("toolu_b", "Bash", {"command": "rm -rf /"}, None)
    decision = rec.check("toolu_w", "Write", {"file_path": "/etc/x", "content": ""}, by="hook")
    assert not decision.allowed
    denied = [p for t, p in sink.events if t == "permission.denied"]
    assert [(d["tool"], d["rule"], d["by"]) for d in denied] == [
        ("Bash", "tool_set", "tool_set"),
        ("Write", "workspace", "hook"),
    ]
    assert rec.denied == 2


def test_text_deltas_are_coalesced_when_streaming(tmp_path: Path) -> None:
    sink = Sink()
    rec = recorder(tmp_path, sink, stream=True)
    for piece in ("hel", "lo ", "there"):
        rec.text_delta(piece)
    rec.flush_text()
    assert "".join(p["text"] for t, p in sink.events if t == "llm.delta") == "hello there"
    silent = Sink()
    quiet = recorder(tmp_path, silent)
    quiet.text_delta("x")
    quiet.flush_text()
    assert silent.events == []


def result(**fields: Any) -> RunResult:
    base: dict[str, Any] = {
        "subtype": "success",
        "is_error": False,
        "num_turns": 3,
        "session_id": "s-1",
        "result": "done",
    }
    return RunResult(**{**base, **fields})


def test_success_is_the_result_text() -> None:
    assert result().text(max_turns=5, max_cost_usd=1.0) == "done"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (529, pe.Overloaded),
        (429, pe.RateLimited),
        (500, pe.ServerError),
        (401, pe.AuthenticationFailed),
    ],
)
def test_api_errors_become_provider_errors(status: int, error_type: type[pe.ProviderError]) -> None:
    """An API error status ends the task as that provider error (retryable ones count on
    the breaker)."""
    run = result(is_error=True, api_error_status=status, result="API Error: nope")
    with pytest.raises(error_type) as raised:
        run.text(max_turns=5, max_cost_usd=1.0)
    assert raised.value.status == status and raised.value.provider == "anthropic"
    assert raised.value.retryable == (status != 401)


def test_limits_and_other_errors_are_typed() -> None:
    with pytest.raises(TaskFailed) as turns:
        result(subtype="error_max_turns", is_error=True).text(max_turns=5, max_cost_usd=1.0)
    assert turns.value.type == "max_turns"
    with pytest.raises(TaskFailed) as budget:
        result(subtype="error_max_budget_usd", is_error=True, total_cost_usd=1.2).text(
            max_turns=5, max_cost_usd=1.0
        )
    assert (
        budget.value.type == "cost_limit" and "BIGTHREE_TASK_MAX_COST_USD" in budget.value.message
    )
    with pytest.raises(TaskFailed) as other:
        result(subtype="error_during_execution", is_error=True, errors=["boom"]).text(
            max_turns=5, max_cost_usd=1.0
        )
    assert other.value.type == "claude_code_error" and "boom" in other.value.message


def test_spend_is_per_model_with_claude_codes_costs() -> None:
    """modelUsage → one entry per model: input counts cache reads and writes, cached the
    reads; the cost is Claude Code's."""
    run = result(
        model_usage={
            "claude-sonnet-4-5": {
                "inputTokens": 100,
                "outputTokens": 20,
                "cacheReadInputTokens": 50,
                "cacheCreationInputTokens": 10,
                "costUSD": 0.01,
            },
            "claude-haiku-4-5": {"inputTokens": 5, "outputTokens": 1, "costUSD": 0.001},
        }
    )
    spent = {s.model: s for s in run.spend("claude-sonnet-4-5")}
    assert spent["claude-sonnet-4-5"].usage == Usage(160, 20, 50)
    assert spent["claude-sonnet-4-5"].cost_usd == 0.01
    assert spent["claude-haiku-4-5"].usage == Usage(5, 1, 0)
    fallback = result(usage={"input_tokens": 7, "output_tokens": 3}, total_cost_usd=0.5)
    assert [(s.model, s.usage, s.cost_usd) for s in fallback.spend("m")] == [
        ("m", Usage(7, 3, 0), 0.5)
    ]


def test_streamed_usage_counts_a_run_cut_short() -> None:
    """Without a result, usage comes from the streams: message_start's input, the last
    message_delta's output; priced later from the table (cost None)."""
    streamed = StreamedUsage()
    start = {
        "id": "msg_1",
        "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 40, "output_tokens": 1},
    }
    streamed.event({"type": "message_start", "message": start}, None)
    streamed.event({"type": "message_delta", "usage": {"output_tokens": 9}}, None)
    [spend] = streamed.spend("x")
    assert (spend.model, spend.usage, spend.cost_usd) == (
        "claude-sonnet-4-5",
        Usage(40, 9, 0),
        None,
    )


def test_the_fake_upstream_reads_claude_codes_requests() -> None:
    """The fake's Anthropic dialect on Claude Code's request shape: system reminders are
    left out of the echo, and merged tool results are read from the last user message."""
    from app.fake_upstream.anthropic import AnthropicDialect

    reminder = {"type": "text", "text": "<system-reminder>\nctx\n</system-reminder>"}
    first = {"messages": [{"role": "user", "content": [reminder, {"type": "text", "text": "hi"}]}]}
    assert AnthropicDialect().read_prompt(first).last_user_text == "hi"
    results = [
        {"type": "tool_result", "tool_use_id": "a", "content": "one"},
        {"type": "tool_result", "tool_use_id": "b", "content": [{"type": "text", "text": "two"}]},
        reminder,
    ]
    later = {
        "messages": [
            first["messages"][0],
            {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "Read"}]},
            {"role": "user", "content": results},
        ]
    }
    assert AnthropicDialect().read_prompt(later).tool_result == "one\ntwo"
