"""Nothing the event door accepts can break a reader, and what it refuses is refused cleanly.

A hypothesis strategy builds JSON values with the hard cases in them — lone surrogates,
nesting past the limit, integers past 64 bits (kept exactly), NaN and Infinity — and posts
them to the real server as raw JSON text. Each answer is 201 (then the event reads back
equal) or 422 (then nothing was stored); never a 5xx. Afterwards the whole log pages and
streams end to end. A row an older version stored (a lone surrogate, 999 levels deep, NaN)
is planted in a stopped service's database: pages and streams still serve it, repaired.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.jsonsafe import MAX_DEPTH
from tests.conftest import provider_env
from tests.support.api import open_events, recv_until
from tests.support.procs import Proc, start_service

INT64 = 2**63 - 1
EXAMPLES = 60

# text with lone surrogates in it some of the time (json.dumps writes them as \udXXX escapes)
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
numbers = st.one_of(
    st.integers(min_value=-INT64 - 1, max_value=INT64),
    st.integers(min_value=INT64 + 1, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": value}
    return value


# a nesting depth stands for its payload, so a failing example prints short
payloads = st.one_of(
    st.dictionaries(texts, json_values, max_size=5),
    st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 3),
    st.integers(min_value=256, max_value=999),
)


def breaks_a_rule(value: Any, depth: int = 0) -> bool:
    """What the door must refuse (the rules of app.core.jsonsafe, restated)."""
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, bool | int) or value is None:
        return False  # integers of any size round-trip exactly
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if depth >= MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(breaks_a_rule(k) or breaks_a_rule(v, depth + 1) for k, v in value.items())
    return any(breaks_a_rule(v, depth + 1) for v in value)


def post_raw(http: httpx.Client, payload: Any) -> httpx.Response:
    # json.dumps writes NaN/Infinity and lone surrogates as the JSON text a client could send
    body = json.dumps({"type": "poison.probe", "payload": payload}, ensure_ascii=True)
    return http.post("/v1/events", content=body, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def http(service: Proc) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=30)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads)
def test_the_door_stores_only_what_reads_back(http: httpx.Client, payload: Any) -> None:
    """201 and read back equal, or 422 and not stored; never a 5xx."""
    if isinstance(payload, int):
        payload = nested(payload)
    before = http.get("/v1/events", params={"limit": 1}).json()["last_seq"]
    response = post_raw(http, payload)
    if breaks_a_rule(payload):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["type"] == "validation_error"
        assert http.get("/v1/events", params={"limit": 1}).json()["last_seq"] == before
        return
    assert response.status_code == 201, response.text
    event = response.json()
    page = http.get("/v1/events", params={"after_seq": event["seq"] - 1, "limit": 1}).json()
    assert page["events"][0]["payload"] == json.loads(json.dumps(payload))


def test_the_whole_log_still_pages_and_streams(http: httpx.Client, service: Proc) -> None:
    """After every probe above, the log reads end to end over REST and WebSocket."""
    post_raw(http, {"last": True})
    after, seen = 0, 0
    while True:
        page = http.get("/v1/events", params={"after_seq": after, "limit": 1000})
        assert page.status_code == 200, page.text
        body = page.json()
        if not body["events"]:
            break
        seen += len(body["events"])
        after = body["next_after_seq"]
    assert seen > 0 and after == body["last_seq"]
    with open_events(service.url, type="poison.probe") as ws:
        got = recv_until(ws, lambda e: e["payload"] == {"last": True})
    assert got[-1]["seq"] <= after


def test_rows_stored_by_an_older_version_render_safely(tmp_path: Path, fake_upstream: Proc) -> None:
    """A lone surrogate, 999 levels of nesting and NaN in stored rows: pages are 200 and a
    stream delivers past them, repaired (U+FFFD, a marker, null)."""
    data = tmp_path / "data"
    env = provider_env(fake_upstream.url)
    proc = start_service(tmp_path, env=env, data_dir=data)
    proc.stop()
    bad = [
        '{"k": "\\ud800"}',
        '{"k": ' + "[" * 999 + "]" * 999 + "}",
        '{"k": NaN, "big": 123456789012345678901234567890}',
    ]
    with sqlite3.connect(data / "bigthree.db") as db:
        seq = db.execute("SELECT max(seq) FROM events").fetchone()[0]
        for offset, text in enumerate(bad, start=1):
            db.execute(
                "INSERT INTO events (seq, ts, source, type, payload) VALUES (?, 0, 'old', ?, ?)",
                (seq + offset, "old.row", text),
            )
    proc = start_service(tmp_path, env=env, data_dir=data)
    try:
        page = httpx.get(proc.url + "/v1/events", params={"type": "old.row"})
        assert page.status_code == 200, page.text
        payloads = [e["payload"] for e in page.json()["events"]]
        assert payloads[0] == {"k": "\ufffd"}
        assert "k" in payloads[1] or payloads[1].get("unreadable") is True
        assert payloads[2] == {"k": None, "big": 123456789012345678901234567890}
        with open_events(proc.url, type="old.row") as ws:
            got = recv_until(ws, lambda e: e["seq"] == seq + len(bad))
        assert [e["seq"] for e in got] == [seq + 1, seq + 2, seq + 3]
    finally:
        proc.stop()
