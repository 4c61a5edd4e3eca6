"""Unit tests for the fake upstream's script queues and reply resolution."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.fake_upstream.reply import Prompt, build_reply, pieces, split_in
from app.fake_upstream.script import DEFAULT_QUEUE, ScriptBook, ScriptRequest, Step

PROMPT = Prompt(last_user_text="hello big world", tool_result=None, input_words=7)


def texts(book: ScriptBook, model: str, n: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(n):
        step = book.take(model)
        out.append(None if step is None else step.text)
    return out


def test_empty_book_has_no_step() -> None:
    """An empty book answers None (the server then uses its default reply)."""
    assert ScriptBook().take("gpt-4o") is None


def test_steps_are_served_in_fifo_order_then_run_out() -> None:
    """A model's steps come out in the order they were pushed, once each."""
    book = ScriptBook()
    book.push("m", [Step(text="a"), Step(text="b")])
    book.push("m", [Step(text="c")])
    assert texts(book, "m", 4) == ["a", "b", "c", None]


def test_models_have_isolated_queues() -> None:
    """Steps pushed for one model are never served to another."""
    book = ScriptBook()
    book.push("a", [Step(text="for-a")])
    assert book.take("b") is None
    assert texts(book, "a", 1) == ["for-a"]


def test_default_queue_serves_models_whose_own_queue_is_empty() -> None:
    """`*` is used only when the model's own queue is empty."""
    book = ScriptBook()
    book.push(DEFAULT_QUEUE, [Step(text="any-1"), Step(text="any-2")])
    book.push("m", [Step(text="own")])
    assert texts(book, "m", 3) == ["own", "any-1", "any-2"]


def test_repeat_serves_a_step_n_times_before_the_next() -> None:
    """`repeat=n` serves the same step n times, then moves on."""
    book = ScriptBook()
    book.push("m", [Step(text="x", repeat=3), Step(text="y")])
    assert texts(book, "m", 5) == ["x", "x", "x", "y", None]


def test_repeat_forever_never_leaves_the_queue() -> None:
    """`repeat=-1` is served forever; later steps in that queue are never reached."""
    book = ScriptBook()
    book.push("m", [Step(text="x", repeat=-1), Step(text="never")])
    assert texts(book, "m", 50) == ["x"] * 50
    assert book.pending() == {"m": 2}


def test_pending_counts_entries_and_clear_empties_everything() -> None:
    """`pending` reports non-empty queues; `clear` drops all of them."""
    book = ScriptBook()
    assert book.push("m", [Step(), Step()]) == 2
    book.push("*", [Step()])
    book.take("m")
    assert book.pending() == {"m": 1, "*": 1}
    book.clear()
    assert book.pending() == {}
    assert book.take("m") is None


@pytest.mark.parametrize("repeat", [0, -2])
def test_repeat_must_be_positive_or_forever(repeat: int) -> None:
    """`repeat` accepts n >= 1 or -1 only."""
    with pytest.raises(ValidationError):
        Step(repeat=repeat)


def test_unknown_step_fields_are_rejected() -> None:
    """A typo in a script fails loudly instead of being ignored."""
    with pytest.raises(ValidationError):
        Step.model_validate({"stauts": 500})
    with pytest.raises(ValidationError):
        ScriptRequest.model_validate({"model": "m", "steps": []})


def test_error_status_defaults_to_500_when_only_an_error_body_is_given() -> None:
    """`error` without an error status answers 500; an error status is kept."""
    only_body = Step.model_validate({"error": {"message": "x"}})
    assert only_body.is_error and only_body.error_status == 500
    assert Step(status=429).is_error and Step(status=429).error_status == 429
    assert not Step().is_error


def test_default_reply_echoes_the_last_user_text_with_word_usage() -> None:
    """No text and no tool calls: `echo: <last user text>`, usage from word counts."""
    reply = build_reply(Step(), PROMPT, id_prefix="call_")
    assert reply.text == "echo: hello big world"
    assert (reply.input_tokens, reply.output_tokens) == (7, 4)
    assert reply.tool_calls == ()


def test_default_reply_after_a_tool_result_is_done() -> None:
    """A tool-result turn answers `done: <result>`."""
    prompt = Prompt(last_user_text="q", tool_result="42 apples", input_words=3)
    assert build_reply(Step(), prompt, id_prefix="x").text == "done: 42 apples"


def test_tool_calls_get_ids_and_json_arguments() -> None:
    """Unscripted ids get the dialect prefix; object arguments become a JSON string."""
    step = Step.model_validate({"tool_calls": [{"name": "f", "arguments": {"a": 1}}]})
    reply = build_reply(step, PROMPT, id_prefix="toolu_")
    (call,) = reply.tool_calls
    assert call.id.startswith("toolu_") and call.name == "f"
    assert json.loads(call.arguments) == {"a": 1} and call.parsed == {"a": 1}
    assert reply.text == ""


def test_raw_string_arguments_are_kept_verbatim_even_when_invalid() -> None:
    """A raw string argument is sent as is; `parsed` is the string when it is not an object."""
    step = Step.model_validate({"tool_calls": [{"id": "c1", "name": "f", "arguments": "{oops"}]})
    (call,) = build_reply(step, PROMPT, id_prefix="call_").tool_calls
    assert (call.id, call.arguments, call.parsed) == ("c1", "{oops", "{oops")


def test_scripted_usage_overrides_counts_and_caps_cached_tokens() -> None:
    """Scripted usage wins field by field; cached tokens never exceed input tokens."""
    step = Step.model_validate(
        {"text": "hi", "usage": {"output_tokens": 9, "cached_input_tokens": 100}}
    )
    reply = build_reply(step, PROMPT, id_prefix="x")
    assert (reply.input_tokens, reply.output_tokens, reply.cached_input_tokens) == (7, 9, 7)


def test_stream_pieces_concatenate_back_to_the_text() -> None:
    """Streaming splits never lose or add characters."""
    for text in ["", "one", "  two words  here ", "a\nb"]:
        assert "".join(pieces(text)) == text
        assert "".join(split_in(text, 3)) == text
    assert len(split_in("abcdefghij", 3)) == 3
