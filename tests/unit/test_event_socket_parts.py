"""The events WebSocket's small parts: the lean receive queue and flag the server's
WebSocket protocol uses instead of asyncio's, and the live writer's slow-reader count."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.events.schemas import LiveEvent
from app.events.socket import LiveWriter, WireCache
from app.ws_protocol import LeanFlag, LeanQueue, text_frame


async def test_queue_hands_items_over_in_order_and_wakes_a_waiting_reader() -> None:
    queue: LeanQueue[int] = LeanQueue()
    assert queue.empty()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert not queue.empty()
    assert [await queue.get(), await queue.get()] == [1, 2]
    assert queue.empty()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait(3)
    assert await reader == 3


async def test_queue_item_survives_a_reader_cancelled_after_being_woken() -> None:
    queue: LeanQueue[str] = LeanQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # one loop turn (no time passes): both readers reach their wait
    queue.put_nowait("item")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await second == "item"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_flag_wait_blocks_only_while_cleared_and_wakes_every_waiter() -> None:
    flag = LeanFlag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    await asyncio.gather(*waiters)
    assert flag.is_set()
    await flag.wait()  # set: returns at once
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    flag.set()
    await late


class FakeSocket:
    """A connection whose client has read `taken` of the bytes written so far."""

    def __init__(self) -> None:
        self.written = 0
        self.taken = 0
        self.frames: list[bytes] = []
        self.writes = 0
        self.closing = False

    def write_now(self, messages: Sequence[tuple[bytes, bytes]]) -> tuple[list[int], int] | None:
        if self.closing:
            return None
        self.writes += 1
        for payload, frame in messages:
            assert frame == text_frame(payload)
            self.frames.append(payload)
            self.written += len(frame)
        return [len(frame) for _, frame in messages], self.written - self.taken

    def close_now(self, code: int, reason: str) -> None:
        self.closing = True


def event(seq: int) -> LiveEvent:
    frame = f'{{"seq":{seq}}}'
    return LiveEvent(seq, 0.0, "test", "t", None, None, None, {}, frame)


def test_writer_skips_what_the_backlog_sent_and_counts_only_unread_events() -> None:
    socket = FakeSocket()
    writer = LiveWriter(socket, limit=3, last_seq=2)
    assert writer([event(2)])  # at or below the backlog's last seq: not written again
    assert socket.frames == []
    for seq in (3, 4, 5):
        assert writer([event(seq)])  # 1, 2, 3 unread: within the limit
    assert not writer([event(6)])  # 4 unread: too slow
    socket.taken = socket.written  # the client catches up
    assert writer([event(7)])
    assert [f.decode() for f in socket.frames][-1] == '{"seq":7}'


def test_writer_counts_a_partly_read_event_as_unread() -> None:
    socket = FakeSocket()
    writer = LiveWriter(socket, limit=2, last_seq=0)
    assert writer([event(1)]) and writer([event(2)])
    socket.taken = socket.written - 1  # the last byte of event 2 is still unsent
    assert writer([event(3)])  # 2 and 3 unread
    assert not writer([event(4)])
    socket.closing = True
    assert writer([event(5)])  # closing: nothing to count, the handler is ending


def test_writer_sends_a_commits_events_in_one_write_and_counts_each() -> None:
    """The events published together go out in one write, in order, those the backlog sent
    left out; each still counts on its own against the limit."""
    socket = FakeSocket()
    writer = LiveWriter(socket, limit=3, last_seq=1)
    assert writer([event(1), event(2), event(3)])
    assert socket.writes == 1
    assert [f.decode() for f in socket.frames] == ['{"seq":2}', '{"seq":3}']
    socket.taken = len(text_frame(b'{"seq":2}'))  # the client has read the first
    assert writer([event(4), event(5)])  # 3, 4, 5 unread: within the limit
    assert not writer([event(6)])  # 4 unread
    assert socket.writes == 3


def test_wire_cache_tells_apart_two_events_of_one_seq() -> None:
    """Two stores in one process number their events alike: an event's wire bytes are its
    own, whatever another store's event of the same seq was sent as."""
    cache = WireCache()
    mine = event(1)
    theirs = LiveEvent(1, 0.0, "other", "t", None, None, None, {}, '{"seq":1,"from":"b"}')
    assert cache.wire(mine) == (b'{"seq":1}', text_frame(b'{"seq":1}'))
    assert cache.wire(theirs)[0] == b'{"seq":1,"from":"b"}'
    assert cache.wire(mine)[0] == b'{"seq":1}'
