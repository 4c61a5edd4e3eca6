"""SharedAgentManager: the AgentManager of one replica among several on PostgreSQL.

The same API as `AgentManager`, with the state moved to where every replica sees it:

- **the queue is the database**: a submit stores the task (any replica may take the
  request); each replica's scheduler claims the oldest task heading its agent's FIFO with a
  row lock (`TaskClaims`), so every task runs once, each agent's in order, one at a time
  across replicas, and at most `BIGTHREE_MAX_CONCURRENT_TASKS` on each replica; its depth
  (`bigthree_tasks_queued`) is counted there by every replica (`QueueDepth`);
- **leases decide who runs what**: a heartbeat renews this replica's leases; a sweep on every
  replica marks `interrupted` the running tasks whose lease ran out (their replica died) —
  start-up touches nothing (a replica starting knows nothing of the others' tasks);
- **reads follow the shared store**: agents from `AgentDirectory` (re-read for every event
  about them), tasks from the database (finished ones also from memory: they never change),
  and `settle()` first catches up with the log, so what any replica stored before a request
  is seen by it;
- **control reaches the replica running the task**: a cancel or a deleted agent's running
  task is flagged in its row (the owner's heartbeat picks it up) and broadcast (at once).

Drain (SIGTERM) stops this replica's claims and interrupts only its running tasks after the
grace period; its queued share simply runs on the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from typing import Any

import structlog

from app.agents.claims import ClaimedRow, EventFor, TaskClaims
from app.agents.directory import AgentDirectory
from app.agents.queue_depth import QueueDepth
from app.agents.repository import task_from_row
from app.agents.runtime import (
    CANCELLED_MESSAGE,
    INTERRUPTED_MESSAGE,
    TASK_ID,
    AgentRuntime,
)
from app.agents.schemas import (
    Agent,
    AgentCreate,
    AgentState,
    Task,
    TaskCreate,
    TaskError,
    TaskState,
)
from app.agents.service import AgentManager
from app.coordination import Broadcast, Message
from app.core.errors import (
    Conflict,
    NotFound,
    StorageUnavailable,
    TooManyRequests,
)
from app.events.follow import LogFollower
from app.events.repository import EventRepository
from app.events.schemas import LiveEvent
from app.events.stream import TERMINAL_TASK_EVENTS
from app.store.backend import RowConflict
from app.store.rows import AgentDeleted, NewEvent

log = structlog.get_logger(__name__)

CANCEL_TOPIC = "cancel"
POLL_S = 1.0  # claim attempts without a wake-up (a hint lost, a lease run out)
FAILURE_WAIT_S = 0.5
SETTLE_WITHIN_S = 2.0
LOST_MESSAGE = (
    "the replica running this task stopped (its lease ran out); the task was not restarted "
    "because a partial run may already have had effects — submit it again if that is safe"
)


class SharedAgentManager(AgentManager):
    def __init__(
        self,
        *,
        claims: TaskClaims,
        directory: AgentDirectory,
        follower: LogFollower,
        events: EventRepository,
        broadcast: Broadcast,
        **kwargs: Any,
    ) -> None:
        super().__init__(replica_id=claims.replica_id, **kwargs)
        self._claims = claims
        self._directory = directory
        self._follower = follower
        self._events = events
        self._broadcast = broadcast
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._running: dict[str, AgentRuntime] = {}  # task id -> runtime, on this replica
        self._queue_depth = QueueDepth(claims.queued_count, self._metrics.tasks_queued)
        broadcast.subscribe(CANCEL_TOPIC, self._on_cancel)

    @property
    def replica_id(self) -> str:
        return self._claims.replica_id

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self._directory.load()
        self._metrics.agents.set(len(self._directory))
        lease = self._claims.lease_s
        for name, loop in (
            ("scheduler", self._schedule()),
            ("heartbeat", self._every(lease / 3, self._heartbeat)),
            ("lease-sweep", self._every(lease / 2, self._sweep, jitter=True)),
        ):
            self._loops.append(asyncio.create_task(loop, name=name, context=contextvars.Context()))

    async def on_events(self, batch: list[LiveEvent]) -> None:
        """The log follower's batch (every replica's events), before any reader sees it."""
        await self._directory.refresh(batch)
        self._metrics.agents.set(len(self._directory))
        for event in batch:
            self._queue_depth.saw(event.type)
            if event.type in TERMINAL_TASK_EVENTS and event.task_id:
                self._executor.waiters.finished(event.task_id)
                self._wake.set()  # its agent's next task heads the queue now
            elif event.type == "task.queued" and self._claimable(event.agent):
                self._wake.set()

    def _claimable(self, name: str | None) -> bool:
        """Whether a task just queued for agent `name` may head a free queue: not while the
        agent runs one (the claim query would find nothing new)."""
        agent = self._directory.get(name) if name else None
        return agent is None or agent.running_task_id is None

    async def settle(self) -> None:
        """Catch up with the shared log: what any replica stored before now is seen."""
        try:
            newest = await self._events.max_seq()
            await self._follower.caught_up(newest, within_s=SETTLE_WITHIN_S)
        except TimeoutError:
            log.warning("settle_timed_out", behind=True)
        except Exception as exc:  # the store is away: the reads that follow say so
            log.warning("settle_failed", error=type(exc).__name__)

    async def drain(self, grace_s: float) -> None:
        self._wake.set()  # the scheduler sees `draining` and stops claiming
        await super().drain(grace_s)

    async def shutdown(self) -> None:
        await super().shutdown()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    # --- agents -------------------------------------------------------------------------

    def list_agents(self) -> list[Agent]:
        return self._directory.all()

    def get_agent(self, name: str) -> Agent:
        agent = self._directory.get(name)
        if agent is None:
            raise NotFound(f"no agent named {name!r}")
        return agent

    async def _agent(self, name: str) -> Agent:
        """The agent, settling first only if this replica has not seen it (created an
        instant ago on another replica): the hot path (a submit) costs no extra query."""
        if self._directory.get(name) is None:
            await self.settle()
        return self.get_agent(name)

    async def create_agent(self, spec: AgentCreate) -> Agent:
        self._refuse_if_draining()
        if self._directory.get(spec.name) is not None:
            raise Conflict(f"an agent named {spec.name!r} already exists")
        if len(self._directory) >= self._settings.max_agents:
            raise TooManyRequests(f"agent limit reached ({self._settings.max_agents})")
        row = self._agent_row(spec)
        event = self._bus.new_event(
            "agent.created",
            agent=row.name,
            payload={"id": row.id, "kind": row.kind, "provider": row.provider, "model": row.model},
        )
        try:
            seqs = await self._writer.write(row, event, operation="agent_created")
        except RowConflict as exc:  # another replica took the name meanwhile
            raise Conflict(f"an agent named {spec.name!r} already exists") from exc
        await self._seen(seqs)
        return self.get_agent(spec.name)

    async def delete_agent(self, name: str) -> Agent:
        agent = await self._agent(name)
        now = time.time()
        seqs = await self._writer.write(
            AgentDeleted(agent.id, now),
            self._bus.new_event("agent.deleted", agent=name, payload={"id": agent.id}),
            operation="agent_deleted",
        )
        error = TaskError(type="cancelled", message="agent deleted").model_dump()
        seqs += await self._claims.cancel_queued(
            error=error, event=self._finished_event("task.cancelled", error), agent_id=agent.id
        )
        if agent.running_task_id is not None:
            await self._cancel_running(agent.running_task_id)
        await self._seen(seqs)
        return agent.model_copy(update={"state": AgentState.DELETED, "updated_at": now})

    # --- tasks --------------------------------------------------------------------------

    async def _submit(self, name: str, spec: TaskCreate) -> Task:
        self._refuse_if_draining()
        agent = await self._agent(name)
        # the order key is the store's (a PostgreSQL sequence), whichever replica takes it
        row, task = self._task_row(agent, spec, queued=agent.queued_tasks, order_key=0)
        queued = self._executor.task_event(
            "task.queued", task, {"timeout_s": task.timeout_s, "position": agent.queued_tasks + 1}
        )
        await self._writer.write(row, queued, operation="task_submitted")
        self._metrics.tasks_submitted.labels(agent.kind).inc()
        return task

    def cached_task(self, task_id: str) -> Task | None:
        """Only a finished task (it never changes again): a live one may be running on
        another replica, so its state is the store's."""
        known = self._book.get(task_id)
        return known if known is not None and known.state.finished else None

    async def _read_task(self, task_id: str) -> Task:
        """A finished task from memory, else from the store."""
        known = self.cached_task(task_id)
        if known is not None:
            return known
        # a malformed id names no task: the same 404 as an unknown one, without a query
        task = await self._tasks.get(task_id) if TASK_ID.fullmatch(task_id) else None
        if task is None:
            raise NotFound(f"no task with id {task_id[:64]!r}")
        return task

    async def list_tasks(self, name: str, limit: int = 100) -> list[Task]:
        return await self._tasks.for_agent((await self._agent(name)).id, limit=limit)

    async def cancel_task(self, task_id: str) -> Task:
        if not self._writer.health().available:  # refuse before anything changes
            raise StorageUnavailable("the store cannot take writes now; nothing was changed")
        task = await self._read_task(task_id)
        if task.state.finished:
            raise Conflict(f"task {task_id} already finished ({task.state.value})")
        error = TaskError(type="cancelled", message=CANCELLED_MESSAGE).model_dump()
        seqs = await self._claims.cancel_queued(
            error=error, event=self._finished_event("task.cancelled", error), task_id=task_id
        )
        if seqs:
            await self._seen(seqs)
            return await self._read_task(task_id)
        await self._cancel_running(task_id)  # it was claimed meanwhile, or was running
        return await self.wait_for_task(task_id, 10.0)

    # --- running ------------------------------------------------------------------------

    async def _schedule(self) -> None:
        while not self._draining:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while (
                    not self._draining and len(self._running) < self._settings.max_concurrent_tasks
                ):
                    row = await self._claims.claim_next()
                    if row is None:
                        break
                    await self._start(row)
                await self._queue_depth.refresh()
            except Exception as exc:  # the store is away: try again shortly
                log.warning("claim_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(FAILURE_WAIT_S)

    async def _start(self, row: ClaimedRow) -> None:
        task = task_from_row(row.values)
        agent = self._directory.get(task.agent) or await self._directory.fetch(task.agent)
        if agent is None:  # deleted since: its task ends as cancelled (it never ran)
            agent_gone = TaskError(type="cancelled", message="agent deleted")
            await self._executor.finish_unstarted(
                task, "unknown", TaskState.CANCELLED, agent_gone.message
            )
            return
        rt = AgentRuntime(agent)  # fresh per task: no history or state kept from before
        self._runtimes[agent.name] = rt
        self._running[task.id] = rt
        rt.worker = asyncio.create_task(
            self._run_claimed(rt, task), name=f"task-{task.id}", context=contextvars.Context()
        )

    async def _run_claimed(self, rt: AgentRuntime, task: Task) -> None:
        try:
            await self._executor.run_claimed(rt, task)
        finally:
            self._running.pop(task.id, None)
            if self._runtimes.get(rt.agent.name) is rt:
                del self._runtimes[rt.agent.name]
            self._wake.set()  # a slot is free, and this agent's next task heads its queue

    async def _heartbeat(self) -> None:
        for task_id in await self._claims.renew():
            self._cancel_local(task_id)

    async def _sweep(self) -> None:
        error = TaskError(type="interrupted", message=LOST_MESSAGE).model_dump()

        def event(row: ClaimedRow) -> NewEvent:
            return self._finished_event(
                "task.interrupted", error, {"recovered": True, "replica": row.values["claimed_by"]}
            )(row)

        seqs = await self._claims.expire(error=error, event=event)
        if seqs:
            log.warning("leases_expired", tasks=len(seqs))
            self._follower.notify(seqs[-1])

    async def _every(self, period_s: float, step: Any, *, jitter: bool = False) -> None:
        while True:
            wait = period_s * (0.5 + random.random()) if jitter else period_s
            await asyncio.sleep(wait)
            try:
                await step()
            except Exception as exc:  # the store is away: the next round tries again
                log.warning("lease_round_failed", step=step.__name__, error=type(exc).__name__)

    # --- control across replicas --------------------------------------------------------

    async def _cancel_running(self, task_id: str) -> None:
        if self._cancel_local(task_id):
            return
        await self._claims.request_cancel(task_id)  # the owner's heartbeat will see it
        with contextlib.suppress(Exception):  # Redis down: the heartbeat still carries it
            await self._broadcast.publish(CANCEL_TOPIC, {"task_id": task_id})

    def _cancel_local(self, task_id: str) -> bool:
        rt = self._running.get(task_id)
        if rt is None:
            return False
        rt.cancel_running(TaskState.CANCELLED)
        return True

    async def _on_cancel(self, message: Message) -> None:
        task_id = message.body.get("task_id")
        if isinstance(task_id, str):
            self._cancel_local(task_id)

    # --- helpers ------------------------------------------------------------------------

    def _finished_event(
        self, type_: str, error: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> EventFor:
        def make(row: ClaimedRow) -> NewEvent:
            return self._bus.new_event(
                type_,
                agent=row.values["agent_name"],
                task_id=row.id,
                payload={"error": error, **(extra or {})},
            )

        return make

    async def _seen(self, seqs: list[int]) -> None:
        """Wait until this replica's reads include the events `seqs` (its own writes)."""
        if seqs:
            self._follower.notify(max(seqs))
            with contextlib.suppress(TimeoutError):
                await self._follower.caught_up(max(seqs), within_s=SETTLE_WITHIN_S)


__all__ = ["INTERRUPTED_MESSAGE", "SharedAgentManager"]
