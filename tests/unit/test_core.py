"""Pure logic of the core: settings rules, redaction, bounded labels, prices, event filters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings, env_name, is_loopback
from app.core.logging import (
    REDACTED,
    bound_log_context,
    log_context,
    merge_log_context,
    redact_secrets,
)
from app.core.metrics import BoundedLabel
from app.events.hub import SLOW_CONSUMER, Hub
from app.events.schemas import Event, EventFilter, EventIn, Filterable
from app.providers.base import Usage
from app.providers.errors import parse_retry_after
from app.providers.pricing import PriceTable


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_loopback_bind_without_keys_is_allowed_public_is_not() -> None:
    """No keys: 127.0.0.1/::1/localhost are fine; 0.0.0.0 is refused with a reason."""
    settings = _settings()
    assert all(settings.unsafe_bind_reason(h) is None for h in ("127.0.0.1", "::1", "localhost"))
    assert "BIGTHREE_API_KEYS" in (settings.unsafe_bind_reason("0.0.0.0") or "")
    keyed = _settings(api_keys="a-key-that-is-long-enough")
    assert keyed.unsafe_bind_reason("0.0.0.0") is None
    assert not is_loopback("example.com")


def test_api_keys_split_on_commas_and_must_be_long() -> None:
    """BIGTHREE_API_KEYS is comma-separated; a short key is refused at start-up."""
    settings = _settings(api_keys=" first-key-0123456789 , second-key-0123456789 ")
    assert [k.get_secret_value() for k in settings.api_keys] == [
        "first-key-0123456789",
        "second-key-0123456789",
    ]
    with pytest.raises(ValidationError, match="at least 16"):
        _settings(api_keys="short")


def test_bad_settings_fail_fast() -> None:
    """Unsafe or contradictory settings are refused, not silently used."""
    with pytest.raises(ValidationError):
        _settings(openai_base_url="ftp://x")
    with pytest.raises(ValidationError):
        _settings(default_task_timeout_s=100, max_task_timeout_s=10)
    with pytest.raises(ValidationError):
        _settings(port=70000)


def test_env_names_use_ecosystem_names_for_providers() -> None:
    """Provider settings read OPENAI_API_KEY etc.; the rest use the BIGTHREE_ prefix."""
    assert env_name("openai_api_key") == "OPENAI_API_KEY"
    assert env_name("gemini_base_url") == "GEMINI_BASE_URL"
    assert env_name("data_dir") == "BIGTHREE_DATA_DIR"


def test_database_url_defaults_under_data_dir(tmp_path: Path) -> None:
    """Without BIGTHREE_DATABASE_URL the SQLite file lives in the data dir."""
    assert _settings(data_dir=tmp_path).resolved_database_url.endswith(f"{tmp_path}/bigthree.db")


def test_redaction_masks_secret_keys_and_values() -> None:
    """Secret-named fields and bearer/sk- values are masked anywhere in a log event."""
    event = {
        "event": "call",
        "api_key": "abc",
        "headers": {"Authorization": "Bearer xyz123456", "accept": "json"},
        "note": "used sk-abcdefghijklmnop and Bearer abcdefghijk",
        "nested": [{"token": "t"}],
    }
    out = redact_secrets(None, "info", event)
    assert out["api_key"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert "sk-abcdefghijklmnop" not in out["note"] and "abcdefghijk" not in out["note"]
    assert out["nested"] == [{"token": REDACTED}]


def test_log_context_binds_for_its_scope_and_puts_back_what_was_there() -> None:
    """Inside: the values are on every line. Outside again: a key bound before has its
    old value back, and a key that was not bound is gone, nested scopes included."""
    assert bound_log_context() == {}
    with log_context(request_id="outer"):
        with log_context(request_id="inner", task_id="t1"):
            assert bound_log_context() == {"request_id": "inner", "task_id": "t1"}
            with log_context(task_id="t2"):
                assert bound_log_context() == {"request_id": "inner", "task_id": "t2"}
            assert bound_log_context()["task_id"] == "t1"
        assert bound_log_context() == {"request_id": "outer"}
    assert bound_log_context() == {}


def test_a_line_carries_the_bound_values_under_its_own_keys() -> None:
    """`merge_log_context` adds what `log_context` bound to a line (the processor chain's
    step), and a key the line sets itself keeps the line's value."""
    with log_context(request_id="r1", task_id="t1"):
        line = merge_log_context(None, "info", {"event": "x", "task_id": "mine"})
    assert line == {"event": "x", "request_id": "r1", "task_id": "mine"}
    assert merge_log_context(None, "info", {"event": "y"}) == {"event": "y"}


def test_bounded_label_caps_distinct_values() -> None:
    """After `limit` distinct values, newcomers map to `other`; known ones pass through."""
    label = BoundedLabel(limit=2)
    assert [label("a"), label("b"), label("c"), label("a")] == ["a", "b", "other", "a"]


def test_retry_after_forms() -> None:
    """retry-after-ms wins; retry-after accepts seconds or an HTTP date; junk is ignored."""
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    date = "Sat, 28 Nov 2026 12:00:10 GMT"
    now = 1795867200.0  # 2026-11-28 12:00:00 UTC
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_prices_from_data_with_prefix_match_and_override(tmp_path: Path) -> None:
    """Dated model names use their family's price; a user file overrides entries."""
    table = PriceTable.load()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=0)
    assert table.cost("openai", "gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.75)
    assert table.cost("openai", "gpt-4o-2024-08-06", usage) == pytest.approx(12.5)
    assert table.cost("openai", "unknown-model", usage) == 0.0
    cached = Usage(input_tokens=1_000_000, output_tokens=0, cached_input_tokens=1_000_000)
    assert table.cost("openai", "gpt-4o", cached) == pytest.approx(1.25)
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"openai": {"gpt-4o": {"input": 1, "output": 1}}}))
    assert PriceTable.load(override).cost("openai", "gpt-4o", usage) == pytest.approx(2.0)


def _event(seq: int, type_: str = "t", agent: str | None = None) -> Event:
    return Event(seq=seq, ts=0.0, source="s", type=type_, agent=agent)


def test_event_filter_prefix_and_agent() -> None:
    """type= matches exactly or by trailing-* prefix; agent= matches exactly."""
    f = EventFilter(agent="a", type="task.*")
    assert f.matches(_event(1, "task.queued", "a"))
    assert not f.matches(_event(2, "llm.request", "a"))
    assert not f.matches(_event(3, "task.queued", "b"))


def test_claude_code_hook_shape_maps_to_an_event() -> None:
    """hook_event_type/source_app/timestamp map onto type/source/payload."""
    body = EventIn.model_validate(
        {"source_app": "proj", "hook_event_type": "Stop", "session_id": "s1", "timestamp": 5}
    )
    assert (body.event_type, body.event_source) == ("Stop", "proj")
    assert body.event_payload() == {"client_timestamp_ms": 5}
    with pytest.raises(ValidationError):
        EventIn.model_validate({"payload": {}})


def test_hub_asks_each_distinct_filter_once_and_offers_each_subscriber_its_events() -> None:
    """Subscribers with equal filters share one answer per publish (a thousand dashboards
    on one stream cost one match, not a thousand); each still gets its own copy."""
    asked: list[str | None] = []

    class CountedFilter(EventFilter):
        def matches(self, event: Filterable) -> bool:
            asked.append(self.type)
            return super().matches(event)

    hub = Hub(queue_size=4)
    watchers = [hub.subscribe(CountedFilter(type="task.*")) for _ in range(3)]
    other = hub.subscribe(CountedFilter(type="other"))
    hub.publish([_event(1, "task.started")])
    assert sorted(asked) == ["other", "task.*"]
    assert [sub.pending for sub in watchers] == [1, 1, 1] and other.pending == 0
    hub.unsubscribe(watchers[0])
    hub.unsubscribe(watchers[0])  # twice: no harm
    hub.publish([_event(2, "task.finished"), _event(3, "other")])
    assert [sub.pending for sub in watchers] == [1, 2, 2] and other.pending == 1
    assert hub.subscriber_count == 3
    hub.close_all()
    assert hub.subscriber_count == 0 and all(sub.closed for sub in [*watchers[1:], other])


def test_hub_drops_a_full_subscriber_and_keeps_others() -> None:
    """A full subscriber queue closes that subscriber with 4008; others still receive."""

    async def scenario() -> None:
        hub = Hub(queue_size=2)
        slow = hub.subscribe(EventFilter())
        fast = hub.subscribe(EventFilter())
        for seq in range(1, 4):
            hub.publish([_event(seq)])
            assert (await fast.next()) == _event(seq)
        assert slow.close_code == SLOW_CONSUMER and slow.closed
        assert await slow.next() is None
        assert hub.subscriber_count == 1 and hub.dropped == 1
        hub.close_all()
        assert fast.close_code == 1001

    asyncio.run(scenario())


def test_tool_results_are_counted_by_outcome() -> None:
    """Agents' `tool.result` events feed bigthree_tool_calls_total{outcome}; others do not."""
    from app.agents.telemetry import count_tool_results
    from app.core.metrics import Metrics

    metrics = Metrics()
    listen = count_tool_results(metrics)
    for is_error in (False, False, True):
        listen(
            Event(seq=1, ts=0, source="agent", type="tool.result", payload={"is_error": is_error})
        )
    listen(Event(seq=2, ts=0, source="external", type="tool.result", payload={}))
    listen(Event(seq=3, ts=0, source="agent", type="tool.call", payload={}))
    value = metrics.registry.get_sample_value
    assert value("bigthree_tool_calls_total", {"outcome": "ok"}) == 2
    assert value("bigthree_tool_calls_total", {"outcome": "error"}) == 1
