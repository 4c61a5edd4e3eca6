"""Realtime response gating (`Turns`) and usage pricing per modality."""

from __future__ import annotations

import pytest

from app.providers.base import Usage
from app.providers.pricing import Price, PriceTable
from app.realtime.turns import Turns
from app.realtime.usage import RealtimeUsage


def test_a_response_starts_only_when_wanted_idle_and_no_tool_runs() -> None:
    """Wanted + no response in progress + no running tool call = ready."""
    turns = Turns()
    assert not turns.ready()
    turns.want()
    assert turns.ready()
    turns.create_sent("e1")
    assert not turns.ready() and turns.active
    turns.created("resp_1")
    turns.tool_started("call_1")
    turns.done()
    assert not turns.ready()  # the tool's output is not in yet
    turns.tool_finished("call_1")
    assert turns.ready()


def test_a_rejected_create_does_not_wedge_the_session() -> None:
    """An error naming our response.create clears it; other errors change nothing."""
    turns = Turns()
    turns.want()
    turns.create_sent("e7")
    assert not turns.rejected("someone-else") and turns.active
    assert turns.rejected("e7") and not turns.active
    turns.want()
    assert turns.ready()


def test_interrupt_drops_wanted_responses_and_marks_the_active_one() -> None:
    """cancel: nothing to cancel when idle; an active response is marked interrupted."""
    turns = Turns()
    turns.want()
    assert turns.interrupt() is False and not turns.ready()
    turns.want()
    turns.create_sent("e1")
    assert turns.interrupt() is True and turns.interrupted
    turns.done()
    assert not turns.interrupted


PRICES = PriceTable(
    {
        "openai": {"gpt-realtime": Price(4.0, 0.4, 16.0)},
        "openai_audio": {"gpt-realtime": Price(32.0, 0.4, 64.0)},
    }
)


def test_usage_splits_text_and_audio_and_prices_each() -> None:
    """Audio tokens are priced at the audio entry, text at the text entry."""
    usage = RealtimeUsage.parse(
        {
            "input_tokens": 1000,
            "output_tokens": 500,
            "input_token_details": {"text_tokens": 400, "audio_tokens": 600, "cached_tokens": 100},
            "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
        }
    )
    assert usage.text == Usage(400, 100, 100)
    assert usage.audio == Usage(600, 400, 0)
    assert usage.total == Usage(1000, 500, 100)
    expected = (300 * 4 + 100 * 0.4 + 100 * 16 + 600 * 32 + 400 * 64) / 1e6
    assert usage.cost(PRICES, "gpt-realtime-2025-08-28") == pytest.approx(expected)


def test_usage_without_details_is_text_and_unknown_models_cost_nothing() -> None:
    """No token details: all text; no audio price: the text price; no price: 0."""
    usage = RealtimeUsage.parse({"input_tokens": 10, "output_tokens": 5})
    assert usage.text == Usage(10, 5, 0) and usage.audio == Usage()
    text_only = PriceTable({"openai": {"gpt-realtime": Price(4.0, 0.4, 16.0)}})
    audio = RealtimeUsage.parse(
        {"input_tokens": 10, "output_tokens": 0, "input_token_details": {"audio_tokens": 10}}
    )
    assert audio.cost(text_only, "gpt-realtime") == pytest.approx(10 * 4 / 1e6)
    assert usage.cost(PRICES, "some-other-model") == 0.0
    assert RealtimeUsage.parse(None).total == Usage()
    assert RealtimeUsage.parse({"input_tokens": -3, "output_tokens": "x"}).total == Usage()
