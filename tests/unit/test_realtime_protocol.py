"""Realtime pure pieces: client messages, upstream URL, delta frames, tools as functions."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from app.core.config import Settings
from app.realtime import protocol as p
from app.realtime.context import function_tools, load_instructions
from app.realtime.upstream import realtime_url
from app.tools.toolset import Tool, ToolResult, Toolset


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_client_messages_parse_by_type() -> None:
    """Each documented message parses to its model; audio must be base64."""
    audio = base64.b64encode(b"\x00\x01" * 10).decode()
    assert isinstance(p.parse_client_message('{"type": "input_text", "text": "hi"}'), p.InputText)
    assert isinstance(
        p.parse_client_message(f'{{"type": "input_audio", "audio": "{audio}"}}'), p.InputAudio
    )
    for kind, model in (
        ("commit", p.Commit),
        ("cancel", p.Cancel),
        ("close", p.Close),
        ("ping", p.Ping),
    ):
        assert isinstance(p.parse_client_message(f'{{"type": "{kind}"}}'), model)


def test_bad_client_messages_say_what_is_wrong() -> None:
    """Not JSON is NotJSON (close 1007); a wrong shape is InvalidMessage naming the problem."""
    for text in ("nope", "[1, 2]", '"text"'):
        with pytest.raises(p.NotJSON):
            p.parse_client_message(text)
    with pytest.raises(p.InvalidMessage, match="unknown message type 'shout'"):
        p.parse_client_message('{"type": "shout"}')
    with pytest.raises(p.InvalidMessage, match="invalid input_text: text"):
        p.parse_client_message('{"type": "input_text", "text": ""}')
    with pytest.raises(p.InvalidMessage, match="base64"):
        p.parse_client_message('{"type": "input_audio", "audio": "not base64!"}')
    with pytest.raises(p.InvalidMessage):
        p.parse_client_message('{"type": "commit", "extra": 1}')


def test_realtime_url_defaults_and_derivation() -> None:
    """Official API → wss://api.openai.com; other base URLs → ws(s)…/realtime; override wins."""
    official = settings()
    assert realtime_url(official) == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    fake = settings(openai_base_url="http://127.0.0.1:9100/v1", realtime_model="m-1")
    assert realtime_url(fake) == "ws://127.0.0.1:9100/v1/realtime?model=m-1"
    proxy = settings(openai_base_url="https://llm.example.com/openai/v1")
    assert realtime_url(proxy) == "wss://llm.example.com/openai/v1/realtime?model=gpt-realtime"
    explicit = settings(realtime_url="wss://rt.example.com/v1/realtime?model=custom")
    assert realtime_url(explicit) == "wss://rt.example.com/v1/realtime?model=custom"
    assert settings(realtime_url="").realtime_url is None
    with pytest.raises(ValueError, match="ws://"):
        settings(realtime_url="https://example.com/realtime")


def test_delta_frames_accept_ga_and_beta_names() -> None:
    """Text, audio and transcript deltas map to client frames under GA and beta names."""
    for upstream, frame, field in (
        ("response.output_text.delta", "text.delta", "delta"),
        ("response.text.delta", "text.delta", "delta"),
        ("response.output_audio.delta", "audio.delta", "audio"),
        ("response.audio.delta", "audio.delta", "audio"),
        ("response.output_audio_transcript.delta", "transcript.delta", "delta"),
        ("response.audio_transcript.delta", "transcript.delta", "delta"),
    ):
        event = {"type": upstream, "response_id": "r1", "delta": "x"}
        assert p.delta_frame(event) == {"type": frame, "response_id": "r1", field: "x"}
    assert p.delta_frame({"type": "response.created"}) is None


def test_close_reason_fits_a_close_frame() -> None:
    """Reasons are cut to at most 123 bytes, never mid-character."""
    end = p.SessionEnd(4502, "é" * 200, "upstream_closed")
    assert len(end.close_reason.encode()) <= 123
    end.close_reason.encode().decode()


class _Command(BaseModel):
    name: str
    prompt: str
    wait_s: float = 0


async def _noop(_: BaseModel) -> ToolResult:
    return ToolResult("ok")


def test_function_tools_hide_wait_s_from_command_agent() -> None:
    """Tools become Realtime functions; command_agent loses its wait_s parameter."""
    toolset = Toolset(
        [
            Tool("command_agent", "Command.", _Command, _noop),
            Tool("other", "Other.", _Command, _noop),
        ]
    )
    tools = {t["name"]: t for t in function_tools(toolset)}
    assert tools["command_agent"]["type"] == "function"
    assert tools["command_agent"]["description"] == "Command."
    assert set(tools["command_agent"]["parameters"]["properties"]) == {"name", "prompt"}
    assert "wait_s" in tools["other"]["parameters"]["properties"]


def test_instructions_are_packaged_and_overridable(tmp_path: Path) -> None:
    """The packaged prompt names the tools; a file replaces it."""
    assert "command_agent" in load_instructions(None)
    custom = tmp_path / "prompt.md"
    custom.write_text("be brief", encoding="utf-8")
    assert load_instructions(custom) == "be brief"
