"""StoreWriter: the one write path — every task transition, event and usage total, group-
committed in one transaction per loop turn, published only after the commit.

Callers queue *units* (a few typed ops that must commit together, e.g. a task insert and
its `task.queued` event). Each turn of the writer's loop takes every queued unit and commits
them in one transaction (for SQLite, right on the loop's thread); then, in order, it runs each
unit's `on_commit` (the in-memory state follows the store), hands the new events to the
publisher (subscribers only ever see stored events) and wakes the waiters.

One exception to "once per turn": writes that start work (task submits, `urgent`). In a
burst of them, once URGENT_BATCH are queued the writer commits right in that write's step
when the backend can do so without waiting (SQLite on the loop's thread), and runs the
callbacks, so those tasks start while the rest of the burst is still being read. Their
events and acknowledgements still go out at the turn's end, in commit order.

The opposite of urgent: records that announce work just started (a task's `running`, a
provider request) are made with the loop's next turn (`write_soon`), so that in a burst the
work itself goes first and the records join one later transaction. They keep their place:
any later write but an urgent one makes them first.

Two kinds of unit, and what a store failure (disk full, read-only, locked) does to them:

- **acknowledged** (`write`): a client is waiting to be told "stored". While the store is
  unavailable it is refused at once; if the batch holding it fails it is dropped. Either
  way the caller gets `StorageUnavailable` (503, Retry-After) and the write is never made
  later — a 5xx means not stored. A unit still queued after `request_timeout_s` is taken
  back the same way, so no request waits on a stuck store for longer than that.
- **durable** (`write_durable`, `write_later`): the service's own record of what happened
  (task transitions and outcomes, events emitted while tasks run, usage, a task's
  artifacts). Kept, in order, and retried with backoff until the store takes it. Only
  shutdown can end the wait: what is still unwritten then is logged by kind and id, and
  `lost` tells the server to exit non-zero.

While the store is unavailable the writer probes it (retrying the kept units, or a write
that changes nothing) and reports the state through `health()` (`/ready`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from app.core.errors import StorageUnavailable
from app.store.backend import RowConflict, StoreFailure, WriteBackend
from app.store.rows import NewEvent, TaskFinished, WriteOp

log = structlog.get_logger(__name__)

Committed = list[tuple[int, NewEvent]]
OnCommit = Callable[[list[int]], None]
BuildOps = Callable[[], Sequence[WriteOp]]

# Urgent writes queued before the writer commits them in the caller's step. In a burst of
# 50 task submits, committing every 2-8 let the first tasks start while the rest were still
# being read: the median provider request left ~3 ms sooner; every 16 gained less, every
# single one had each commit's fixed cost eat the gain (bench/README.md, run 12).
URGENT_BATCH = 4
RETRY_WAITS_S: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


@dataclass(eq=False, slots=True)
class _Unit:
    ops: tuple[WriteOp, ...]
    operation: str
    durable: bool
    on_commit: OnCommit | None
    future: asyncio.Future[list[int]] | None
    urgent: bool = False
    taken: bool = False
    expires: float = 0.0  # acknowledged: when a still-queued unit is taken back (loop time)


@dataclass(frozen=True, slots=True)
class StoreHealth:
    available: bool
    reason: str | None = None  # disk_full | read_only | locked | io_error | unavailable
    detail: str | None = None
    since: float | None = None
    pending_writes: dict[str, int] = field(default_factory=dict)  # kept writes, by operation


@dataclass(frozen=True, slots=True)
class LostWrites:
    """What shutdown could not store."""

    units: int
    by_operation: dict[str, int]
    event_types: dict[str, int]
    task_outcomes: list[str] = field(default_factory=list)  # "<task id>:<state>"


class StoreWriter:
    def __init__(
        self,
        backend: WriteBackend,
        *,
        publish: Callable[[Committed], None] | None = None,
        request_timeout_s: float = 5.0,
        retry_waits_s: Sequence[float] = RETRY_WAITS_S,
        on_retry: Callable[[str], None] | None = None,
        on_availability: Callable[[bool], None] | None = None,
    ) -> None:
        self._backend = backend
        self._publish = publish
        self._request_timeout_s = request_timeout_s
        self._waits = tuple(retry_waits_s)
        self._on_retry = on_retry
        self._on_availability = on_availability
        self._queue: list[_Unit] = []
        self._soon: list[tuple[BuildOps, str, OnCommit | None]] = []  # see write_soon
        # committed in a caller's step (`_commit_now`): their events and acknowledgements
        # go out with the loop's next turn
        self._unannounced: list[tuple[_Unit, list[int] | None]] = []
        self._in_flight = False
        self._expiry: asyncio.TimerHandle | None = None  # one timer for every write's bound
        self._settled: asyncio.Future[None] | None = None  # made when a reader waits
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._health = StoreHealth(available=True)
        self._last_seq = 0
        self._closing = False
        self.lost: LostWrites | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._last_seq = await self._backend.open()
        self._task = asyncio.create_task(self._loop(), name="store-writer")

    def set_publisher(self, publish: Callable[[Committed], None]) -> None:
        self._publish = publish

    @property
    def last_seq(self) -> int:
        """The newest committed event seq."""
        return self._last_seq

    def health(self) -> StoreHealth:
        h = self._health
        if h.available:
            return h
        pending = dict(Counter(u.operation for u in self._queue))
        return StoreHealth(h.available, h.reason, h.detail, h.since, pending)

    async def flush(self, within_s: float, *, while_unavailable: bool = False) -> bool:
        """Wait (at most `within_s`) until everything queued so far has been written or
        dropped; True when nothing is left. While the store cannot take writes this returns
        at once, unless `while_unavailable` (shutdown gives a full disk its chance)."""
        self._make_soon()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while self._queue or self._in_flight or self._unannounced:
                    if not (self._health.available or while_unavailable):
                        break
                    self._idle.clear()
                    await self._idle.wait()
        return not (self._queue or self._in_flight or self._unannounced)

    async def close(self, within_s: float = 10.0) -> LostWrites | None:
        """Write what is queued (for at most `within_s`), stop, and report what was lost."""
        self._closing = True
        self._wake.set()
        await self.flush(within_s, while_unavailable=True)
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        self._announce()  # committed in a caller's step after the loop's last turn
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        lost, self._queue = self._queue, []
        if lost:
            self.lost = _summarize(lost)
            log.error(
                "store_writes_lost",
                units=self.lost.units,
                by_operation=self.lost.by_operation,
                event_types=self.lost.event_types,
                task_outcomes=self.lost.task_outcomes,
                store=self._health.reason,
                detail=self._health.detail,
            )
            for unit in lost:
                self._fail(unit, "the service stopped before the store could take this write")
        await self._backend.close()
        return self.lost

    # --- writing ----------------------------------------------------------------------------

    async def write(
        self,
        *ops: WriteOp,
        operation: str,
        on_commit: OnCommit | None = None,
        urgent: bool = False,
    ) -> list[int]:
        """An acknowledged write: stored when this returns, never stored if it raises
        StorageUnavailable. Returns the seqs given to its events.

        `urgent`: work waits on this commit (a task starts in its `on_commit`). Once
        URGENT_BATCH urgent writes are queued, what is queued commits at once, in this
        step, when the backend can commit without waiting; otherwise at the turn's end."""
        if not self._health.available or self._closing:
            raise self._unavailable()
        unit = self._enqueue(
            ops, operation, durable=False, on_commit=on_commit, wait=True, urgent=urgent
        )
        assert unit.future is not None
        loop = asyncio.get_running_loop()
        unit.expires = loop.time() + self._request_timeout_s
        if self._expiry is None:
            self._expiry = loop.call_at(unit.expires, self._expire)
        if urgent and sum(u.urgent for u in self._queue) >= URGENT_BATCH:
            self._commit_now()
        # no timer and no shield per write (two loop hops where one does): `_expire` takes
        # back what is still queued when its time is up; a cancelled caller's write is
        # still made, as before, its answer unread
        return await unit.future

    async def write_durable(
        self, *ops: WriteOp, operation: str, on_commit: OnCommit | None = None
    ) -> list[int]:
        """A write kept until the store takes it; returns once it is stored. Raises
        StorageUnavailable only when shutdown gave up on it."""
        unit = self._enqueue(ops, operation, durable=True, on_commit=on_commit, wait=True)
        assert unit.future is not None
        return await unit.future  # kept if the caller is cancelled: the queue holds it

    def write_later(self, *ops: WriteOp, operation: str, on_commit: OnCommit | None = None) -> None:
        """A durable write nobody waits for (events emitted on hot paths)."""
        self._enqueue(ops, operation, durable=True, on_commit=on_commit, wait=False)

    def write_soon(
        self, build: BuildOps, *, operation: str, on_commit: OnCommit | None = None
    ) -> None:
        """A durable write nobody waits for, made (`build()` called, the unit queued) with
        the loop's next turn instead of now: for the records that announce work just
        started, so the work goes first. In a burst of 50 task submits this takes a task's
        `running` and its provider request's event off the path to the next task's
        provider call, and out of the early commits (bench/README.md, run 14).

        Order is kept: any later write made first (`_enqueue`) makes these before itself,
        except an urgent one — a task submit, which depends on no other task's records."""
        if not self._soon:
            asyncio.get_running_loop().call_soon(self._make_soon)
        self._soon.append((build, operation, on_commit))

    def _make_soon(self) -> None:
        soon, self._soon = self._soon, []
        for build, operation, on_commit in soon:
            try:
                ops = build()
            except Exception:
                log.exception("store_write_not_built", operation=operation)
                continue
            self._enqueue(ops, operation, durable=True, on_commit=on_commit, wait=False)

    def _enqueue(
        self,
        ops: Sequence[WriteOp],
        operation: str,
        *,
        durable: bool,
        on_commit: OnCommit | None,
        wait: bool,
        urgent: bool = False,
    ) -> _Unit:
        if self._soon and not urgent:
            self._make_soon()
        future = asyncio.get_running_loop().create_future() if wait else None
        unit = _Unit(tuple(ops), operation, durable, on_commit, future, urgent)
        self._queue.append(unit)
        self._idle.clear()
        self._wake.set()
        return unit

    def _expire(self) -> None:
        """Take back every acknowledged write still queued past its bound (its caller gets
        StorageUnavailable: not stored, and never will be); one in a transaction already
        waits for that transaction's outcome. Then wait for the next bound, if any."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for unit in [u for u in self._queue if _answer_awaited(u) and u.expires <= now]:
            assert unit.future is not None
            self._queue.remove(unit)
            unit.future.set_exception(
                StorageUnavailable(
                    f"the store did not take this write within {self._request_timeout_s:g}s",
                    store=self._health.reason or "busy",
                )
            )
        left = [u.expires for u in self._queue if _answer_awaited(u)]
        if left:
            self._expiry = loop.call_at(min(left), self._expire)

    def _unavailable(self) -> StorageUnavailable:
        h = self._health
        if self._closing and h.available:
            return StorageUnavailable("the service is shutting down", store="closing")
        return StorageUnavailable(
            f"the store cannot take writes now ({h.reason}); nothing was stored",
            store=h.reason,
        )

    # --- the loop ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self._queue:
                self._announce()
                self._idle.set()
                if self._health.available:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._pause(failures)
                if self._stop.is_set() or self._queue:
                    continue
                try:
                    await self._backend.probe()
                except StoreFailure as exc:
                    failures += 1
                    self._down(exc)
                    continue
                failures = 0
                self._up()
                continue
            batch, self._queue = self._queue, []
            for unit in batch:
                unit.taken = True
            self._in_flight = True
            try:
                seqs = await self._commit(batch)
            except StoreFailure as exc:
                failures += 1
                self._down(exc)
                self._announce()
                self._keep_durable(batch)
                self._settle()
                await self._pause(failures)
                continue
            finally:
                self._in_flight = False
            failures = 0
            self._up()
            self._committed(batch, seqs)
            self._settle()
            # one transaction per loop turn, also when the commit did not wait (SQLite's
            # run on the loop's thread): what the callbacks queued joins the next turn's
            await asyncio.sleep(0)

    async def settled(self) -> None:
        """Return once every write queued or in flight when this was called has been
        committed (or has failed) and its callbacks have run; at once when there is none."""
        for _ in range(2):  # the commit in flight, then the one taking what is queued now
            if not (self._in_flight or self._queue) or not self._health.available:
                return
            if self._settled is None:
                self._settled = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._settled)

    def _settle(self) -> None:
        settled, self._settled = self._settled, None
        if settled is not None and not settled.done():
            settled.set_result(None)

    async def _commit(self, batch: list[_Unit]) -> list[list[int] | None]:
        try:
            return list(await self._backend.commit([u.ops for u in batch]))
        except RowConflict:
            pass
        # one unit breaks a constraint: commit each alone so the others still go in
        results: list[list[int] | None] = []
        for i, unit in enumerate(batch):
            try:
                results.extend(await self._backend.commit([unit.ops]))
            except RowConflict as exc:
                results.append(None)
                log.error("store_write_refused", operation=unit.operation, error=str(exc))
                if unit.future is not None and not unit.future.done():
                    unit.future.set_exception(exc)
            except StoreFailure:
                # the rest go back to the queue; those already committed are done
                self._committed(batch[:i], results)
                raise_with = batch[i:]
                batch[:] = raise_with
                raise
        return results

    def _commit_now(self) -> None:
        """Commit what is queued right here, when the backend can without waiting and no
        commit is in flight. The in-memory state follows at once (`on_commit`: the batch's
        tasks start now, not after the rest of a burst is read); the events and the
        acknowledgements wait for the loop's turn (`_announce`), so the burst's remaining
        requests are read before them. Any failure leaves the batch queued: the loop's
        turn commits it and handles the failure as always."""
        if self._in_flight or not self._health.available or self._closing:
            return
        batch = self._queue
        try:
            seqs = self._backend.commit_now([u.ops for u in batch])
        except (StoreFailure, RowConflict):
            return
        if seqs is None:
            return
        self._queue = []
        for unit in batch:
            unit.taken = True
        # the callbacks run as in the loop's turn: outside the calling request's context
        contextvars.Context().run(self._on_commit, batch, seqs)
        self._unannounced.extend(zip(batch, seqs, strict=True))
        self._settle()  # a reader waiting for these writes may go on
        self._wake.set()

    def _committed(self, batch: list[_Unit], seqs: list[list[int] | None]) -> None:
        self._on_commit(batch, seqs)
        self._unannounced.extend(zip(batch, seqs, strict=True))
        self._announce()

    def _on_commit(self, batch: list[_Unit], seqs: Sequence[list[int] | None]) -> None:
        for unit, assigned in zip(batch, seqs, strict=True):
            if assigned is not None and unit.on_commit is not None:
                try:
                    unit.on_commit(assigned)
                except Exception:
                    log.exception("store_on_commit_failed", operation=unit.operation)

    def _announce(self) -> None:
        """Publish the committed units' events and wake their waiters, in commit order."""
        if not self._unannounced:
            return
        done, self._unannounced = self._unannounced, []
        events: Committed = []
        for unit, assigned in done:
            if assigned is not None:
                new = (op for op in unit.ops if isinstance(op, NewEvent))
                events.extend(zip(assigned, new, strict=True))
        if events:
            self._last_seq = events[-1][0]
            if self._publish is not None:
                try:
                    self._publish(events)
                except Exception:
                    log.exception("event_publish_failed")
        for unit, assigned in done:
            if assigned is not None and unit.future is not None and not unit.future.done():
                unit.future.set_result(assigned)

    def _keep_durable(self, batch: list[_Unit]) -> None:
        kept = []
        for unit in batch:
            if unit.durable:
                unit.taken = False
                kept.append(unit)
                if self._on_retry is not None:
                    self._on_retry(unit.operation)
            else:
                self._fail(unit, None)
        self._queue[:0] = kept

    def _fail(self, unit: _Unit, message: str | None) -> None:
        if unit.future is not None and not unit.future.done():
            error = (
                self._unavailable()
                if message is None
                else StorageUnavailable(message, store=self._health.reason or "closing")
            )
            unit.future.set_exception(error)

    async def _pause(self, failures: int) -> None:
        wait = self._waits[min(max(failures - 1, 0), len(self._waits) - 1)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._stop.wait()

    def _down(self, exc: StoreFailure) -> None:
        was = self._health
        if was.available or was.reason != exc.reason:
            log.error("store_unavailable", reason=exc.reason, detail=exc.detail)
        since = was.since if not was.available and was.since else time.time()
        self._health = StoreHealth(False, exc.reason, exc.detail, since)
        self._idle.set()  # wake flushers: they stop waiting on a store that cannot write
        if was.available and self._on_availability is not None:
            self._on_availability(False)

    def _up(self) -> None:
        if self._health.available:
            return
        log.warning("store_available", was=self._health.reason)
        self._health = StoreHealth(available=True)
        if self._on_availability is not None:
            self._on_availability(True)


def _answer_awaited(unit: _Unit) -> bool:
    """An acknowledged write whose caller still waits: bounded by `request_timeout_s`. (A
    caller that went away cancelled its future: that write is made anyway, as it was.)"""
    return unit.future is not None and not unit.durable and not unit.future.done()


def _summarize(units: list[_Unit]) -> LostWrites:
    by_operation = Counter(u.operation for u in units)
    event_types: Counter[str] = Counter()
    outcomes: list[str] = []
    for unit in units:
        for op in unit.ops:
            if isinstance(op, NewEvent):
                event_types[op.type] += 1
            elif isinstance(op, TaskFinished):
                outcomes.append(f"{op.task_id}:{op.state}")
    return LostWrites(len(units), dict(by_operation), dict(event_types), outcomes)
