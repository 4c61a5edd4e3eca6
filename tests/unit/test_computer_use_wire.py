"""Computer use on the Gemini wire (the computerUse tool, function responses with an inline
PNG), and the fake upstream's checks and default script for it."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

from app.fake_upstream import computer_use as fake
from app.providers.base import CompletionRequest, ComputerUse, InlineImage, Message, ToolCall
from app.providers.gemini_wire import parse_completion, request_json


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A real PNG (RGB, white), built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff" * 3 * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def conversation(png: bytes, *, url: Any = "http://site/") -> CompletionRequest:
    call = ToolCall("fc_1", "click_at", {"x": 500, "y": 450})
    response = {"url": url} if url is not None else {}
    return CompletionRequest(
        model="gemini-2.5-computer-use-preview-10-2025",
        messages=[
            Message("system", "be a browser"),
            Message("user", "click it"),
            Message("assistant", None, (call,)),
            Message(
                "tool",
                "{}",
                tool_call_id="fc_1",
                tool_name="click_at",
                result=response,
                images=(InlineImage("image/png", png),),
            ),
        ],
        computer_use=ComputerUse(),
    )


def test_request_carries_the_tool_and_the_screenshot() -> None:
    png = tiny_png()
    body = request_json(conversation(png))
    assert body["tools"] == [{"computerUse": {"environment": "ENVIRONMENT_BROWSER"}}]
    answer = body["contents"][-1]["parts"][0]["functionResponse"]
    assert answer["name"] == "click_at" and answer["id"] == "fc_1"
    assert answer["response"] == {"url": "http://site/"}
    (part,) = answer["parts"]
    assert part["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(part["inlineData"]["data"]) == png


def test_excluded_actions_and_function_declarations_combine() -> None:
    request = CompletionRequest(
        model="m",
        messages=[Message("user", "hi")],
        computer_use=ComputerUse(excluded_actions=("drag_and_drop",)),
    )
    tools = request_json(request)["tools"]
    assert tools == [
        {
            "computerUse": {
                "environment": "ENVIRONMENT_BROWSER",
                "excludedPredefinedFunctions": ["drag_and_drop"],
            }
        }
    ]


def test_malformed_function_call_is_kept_as_the_raw_finish_reason() -> None:
    data = {"candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL"}]}
    completion = parse_completion(data, "m", "gemini")
    assert completion.tool_calls == () and completion.raw_finish_reason == "MALFORMED_FUNCTION_CALL"


def test_fake_checks_and_records_each_function_response() -> None:
    body = request_json(conversation(tiny_png(7, 5)))
    assert fake.is_computer_use(body)
    records, problem = fake.check(body, "m")
    assert problem is None
    (record,) = records
    assert (record.name, record.call_id, record.url) == ("click_at", "fc_1", "http://site/")
    assert (record.width, record.height, record.png_bytes) == (7, 5, len(tiny_png(7, 5)))


def test_fake_refuses_a_response_without_url_or_png() -> None:
    _, problem = fake.check(request_json(conversation(tiny_png(), url=None)), "m")
    assert problem is not None and "response.url" in problem
    _, problem = fake.check(request_json(conversation(b"GIF89a not a png")), "m")
    assert problem is not None and "not a PNG" in problem


def test_fake_default_script_plays_the_try_it() -> None:
    """navigate to the demo page → click its button → answer with the incident number."""
    start = {"contents": [{"role": "user", "parts": [{"text": "which is down?"}]}]}
    first = fake.default_step(start, "http://127.0.0.1:9100/")
    assert first.tool_calls[0].name == "navigate"
    assert first.tool_calls[0].arguments == {"url": "http://127.0.0.1:9100/_fake/demo"}

    def after(url: str) -> dict[str, Any]:
        response = {"functionResponse": {"name": "x", "response": {"url": url}}}
        return {"contents": [{"role": "user", "parts": [response]}]}

    click = fake.default_step(after("http://127.0.0.1:9100/_fake/demo"), "http://x/")
    assert click.tool_calls[0].name == "click_at"
    done = fake.default_step(
        after("http://127.0.0.1:9100/_fake/demo?details=1&incident=INC-1234"), "http://x/"
    )
    assert done.text is not None and "incident INC-1234" in done.text
    lost = fake.default_step(after("http://elsewhere/"), "http://x/")
    assert lost.text is not None and "not on the demo page" in lost.text


def test_demo_page_escapes_what_it_is_given() -> None:
    page = fake.demo_page(True, "INC-1234")
    assert "INC-1234" in page and "payments" in page
    hostile = fake.demo_page(True, "'><script>alert(1)</script>")
    assert "<script>alert" not in hostile
