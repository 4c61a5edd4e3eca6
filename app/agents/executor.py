"""TaskExecutor: runs queued tasks — one at a time per agent, a global limit across agents.

Each task runs as its own asyncio task (started eagerly: `app/core/eager.py`) inside a
deadline (a `Deadline` that provider calls read, plus an `asyncio.timeout` backstop just
after it). Every transition goes to the store writer as one unit with its event —
`running` before the agent loop starts, the outcome and the agent's totals at the end — and
is awaited: the in-memory task (TaskBook) changes in the unit's `on_commit`, before the
event is published, so a client that sees the event reads the matching state back. A
transition is kept until the store takes it (a full disk holds the task's outcome until
space is freed; its terminal event follows then). The AgentManager decides *what* runs;
this module only runs it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import structlog

from app.agents.kinds.base import AgentKindRunner, RunContext, TaskFailed
from app.agents.llm import CallContext, LLMClient
from app.agents.repository import TaskRepository
from app.agents.runtime import CANCELLED_MESSAGE, INTERRUPTED_MESSAGE, AgentRuntime, TaskBook
from app.agents.schemas import AgentState, Task, TaskError, TaskState, UsageOut
from app.agents.waiting import TaskWaiters
from app.core.config import Settings
from app.core.eager import create_eager_task
from app.core.errors import StorageUnavailable
from app.core.logging import log_context
from app.core.metrics import Metrics
from app.events.service import EventBus
from app.providers.base import Message
from app.providers.errors import ProviderError
from app.resilience.errors import DeadlineExceeded, ResilienceError
from app.resilience.timeouts import Deadline, deadline_scope
from app.store.rows import AgentSessionSaved, NewEvent, TaskFinished, TaskStarted
from app.store.writer import StoreWriter

# The `Deadline` is what ends a task on time: provider calls bound each attempt by it, so a
# call it cuts off ends as DeadlineExceeded and is recorded on its breaker as a timeout. The
# asyncio timeout is only a backstop for code that ignores the deadline; were it due at the
# same instant, the two timers would race and the cut-off call would sometimes count as a
# breaker failure and sometimes not (cancelled calls are not recorded).
DEADLINE_BACKSTOP_S = 0.5

log = structlog.get_logger(__name__)


def _turn(task: Task) -> tuple[Message, Message]:
    """A succeeded task as the conversation turn later tasks of its agent are sent."""
    return Message("user", task.prompt), Message("assistant", task.result or "")


class TaskExecutor:
    def __init__(
        self,
        *,
        settings: Settings,
        tasks: TaskRepository,
        book: TaskBook,
        writer: StoreWriter,
        bus: EventBus,
        llm: LLMClient,
        metrics: Metrics,
        runners: Mapping[str, AgentKindRunner],
        draining: Callable[[], bool],
        replica_id: str | None = None,
    ) -> None:
        self._settings = settings
        self._tasks = tasks
        self._book = book
        self._writer = writer
        self._bus = bus
        self._llm = llm
        self._metrics = metrics
        self._runners = runners
        self._draining = draining
        self._replica_id = replica_id  # named in `task.running` when replicas share the work
        self._slots = asyncio.Semaphore(settings.max_concurrent_tasks)
        self.waiters = TaskWaiters(settings.max_waiters)

    # --- for the manager ----------------------------------------------------------------

    def ensure_worker(self, rt: AgentRuntime) -> None:
        if rt.queue and rt.worker is None and not self._draining():
            # Started eagerly: the task's provider call leaves now, not after everything else
            # queued on the loop (in a burst, every other request and task; bench/README.md,
            # run 11). The worker names itself `rt.worker` in that first step. A fresh
            # context: the worker outlives the request that started it, so it must not log
            # that request's id against every later task.
            create_eager_task(
                self._work(rt), name=f"agent-{rt.agent.name}", context=contextvars.Context()
            )

    async def interrupt(self, runtimes: Iterable[AgentRuntime]) -> None:
        """Cancel every running task, recording it as `interrupted`."""
        jobs = [job for rt in runtimes if (job := rt.cancel_running(TaskState.INTERRUPTED))]
        if jobs:
            await asyncio.wait(jobs, timeout=10.0)

    async def wait_for(
        self, task_id: str, timeout_s: float, read: Callable[[str], Awaitable[Task]]
    ) -> Task:
        """The task once it has finished, or as it is after `timeout_s` seconds."""
        return await self.waiters.wait(task_id, timeout_s, read)

    async def finish_unstarted(
        self,
        task: Task,
        kind: str,
        state: TaskState,
        reason: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a task that never ran (cancelled while queued, its agent deleted, found
        running after a crash, ...)."""
        error = TaskError(type=state.value, message=reason)
        now = time.time()
        done = task.model_copy(update={"state": state, "error": error, "finished_at": now})

        def stored(_seqs: list[int]) -> None:
            self._book.put_finished(done)
            self._metrics.tasks_finished.labels(kind, state.value).inc()
            self._signal_finished(task.id)

        try:
            await self._writer.write_durable(
                TaskFinished(task.id, state.value, now, error=error.model_dump()),
                self.task_event(
                    f"task.{state.value}", task, {"error": error.model_dump(), **(extra or {})}
                ),
                operation="task_unstarted",
                on_commit=stored,
            )
        except StorageUnavailable:
            log.error("task_not_recorded", agent=task.agent, task_id=task.id, state=state.value)
            self._signal_finished(task.id)

    def task_event(
        self, type_: str, task: Task, payload: dict[str, Any], *, ts: float | None = None
    ) -> NewEvent:
        return self._bus.new_event(type_, agent=task.agent, task_id=task.id, payload=payload, ts=ts)

    def emit_task(self, type_: str, task: Task, payload: dict[str, Any]) -> None:
        self._bus.emit(type_, agent=task.agent, task_id=task.id, payload=payload)

    async def run_claimed(self, rt: AgentRuntime, task: Task) -> None:
        """Run a task this replica claimed from the shared store (scale-out), to its
        recorded end; the caller holds the concurrency slot."""
        try:
            await self._run(rt, task)
        except Exception:
            self._not_recorded(rt, task)

    # --- running ------------------------------------------------------------------------

    async def _work(self, rt: AgentRuntime) -> None:
        rt.worker = asyncio.current_task()
        try:
            while rt.queue and not self._draining():
                head = rt.queue[0]
                async with self._slots:
                    if self._draining() or not rt.queue or rt.queue[0] is not head:
                        continue
                    rt.queue.popleft()
                    self._metrics.tasks_queued.dec()
                    try:
                        await self._run(rt, head)
                    except Exception:
                        self._not_recorded(rt, head)
        finally:
            rt.worker = None

    async def _run(self, rt: AgentRuntime, task: Task) -> None:
        """Run `task` as the agent's job, to its recorded end."""
        rt.running = task
        rt.job = create_eager_task(self._execute(rt, task), name=f"task-{task.id}")
        try:
            await asyncio.shield(rt.job)
        except asyncio.CancelledError:
            if not rt.job.done():
                raise
        finally:
            rt.running = None
        if rt.job.cancelled():  # cancelled before _execute could record it
            state = rt.cancel_as.pop(task.id, TaskState.CANCELLED)
            cancelled = state == TaskState.CANCELLED
            reason = CANCELLED_MESSAGE if cancelled else INTERRUPTED_MESSAGE
            await self.finish_unstarted(task, rt.agent.kind, state, reason)

    def _not_recorded(self, rt: AgentRuntime, task: Task) -> None:
        """A task's state could not be stored (shutdown gave up on a store that stayed
        unavailable, or a bug): say so, release whoever waits on the task, and keep this
        agent's worker going. The stored row still reads queued or running; the next start
        re-queues or interrupts it (AgentManager.start)."""
        log.exception("task_not_recorded", agent=task.agent, task_id=task.id)
        if rt.agent.state == AgentState.BUSY:
            rt.agent = rt.agent.model_copy(update={"state": AgentState.IDLE})
        self._signal_finished(task.id)

    async def _execute(self, rt: AgentRuntime, task: Task) -> None:
        agent = rt.agent
        started = time.time()
        self._metrics.task_queue_wait.labels(agent.kind).observe(
            max(0.0, started - task.created_at)
        )

        def stored(_seqs: list[int]) -> None:
            self._book.put_live(
                task.model_copy(
                    update={
                        "state": TaskState.RUNNING,
                        "started_at": started,
                        "queue_wait_s": max(0.0, started - task.created_at),
                    }
                )
            )
            # busy is shown from memory only: after a restart nothing is running, so the
            # store never needs to hold it (one write fewer per task)
            rt.agent = rt.agent.model_copy(update={"state": AgentState.BUSY})

        # durable but not awaited, and made with the loop's next turn: the provider call
        # goes first. Nothing is acknowledged or published before the commit (`task.running`
        # is published, and the live snapshot reads running, from `stored`), and the writer
        # keeps it ahead of every later write of the task, so it lands before the outcome.
        running = {"replica": self._replica_id} if self._replica_id else {}
        self._writer.write_soon(
            lambda: (
                TaskStarted(task.id, started),
                self.task_event("task.running", task, running, ts=started),
            ),
            operation="task_running",
            on_commit=stored,
        )
        self._metrics.tasks_running.inc()
        call = CallContext(agent=agent.name, task_id=task.id)
        deadline = Deadline.after(task.timeout_s)
        result: str | None = None
        error: TaskError | None = None
        ctx = RunContext(
            self._llm,
            call,
            lambda: self._history(rt),
            emit=self._task_emitter(task),
            remember_session=lambda session_id: self._remember_session(rt, session_id),
        )
        with log_context(agent=agent.name, task_id=task.id):
            try:
                async with asyncio.timeout(task.timeout_s + DEADLINE_BACKSTOP_S):
                    with deadline_scope(deadline):
                        result = await self._runners[agent.kind].run(agent, task, ctx)
                state = TaskState.SUCCEEDED
            except asyncio.CancelledError:
                state = rt.cancel_as.pop(task.id, TaskState.CANCELLED)
                error = TaskError(
                    type=state.value,
                    message=INTERRUPTED_MESSAGE
                    if state == TaskState.INTERRUPTED
                    else CANCELLED_MESSAGE,
                )
            except Exception as exc:
                state, error = self._classify_failure(exc, deadline, task.timeout_s)
            finally:
                self._metrics.tasks_running.dec()
            # the outcome is decided: from here on a cancel (or a drain) must not record
            # a second one while this one waits for the store
            rt.running = None
            await self._record_finish(
                rt, task, state, result, error, call, started, files_changed=ctx.files_changed
            )

    def _classify_failure(
        self, exc: Exception, deadline: Deadline, timeout_s: float
    ) -> tuple[TaskState, TaskError]:
        # DeadlineExceeded: the task's deadline cut a provider call off (asyncio may fire that
        # timer a hair before `deadline.expired` turns true, so the type decides, not the clock)
        if isinstance(exc, TimeoutError | DeadlineExceeded) or deadline.expired:
            return TaskState.TIMED_OUT, TaskError(
                type="timed_out",
                message=f"the task did not finish within its {timeout_s:g}s deadline",
            )
        if isinstance(exc, ProviderError):
            details = exc.describe()
            return TaskState.FAILED, TaskError(
                type=exc.reason, message=exc.message, details=details
            )
        if isinstance(exc, ResilienceError):
            return TaskState.FAILED, TaskError(type=exc.reason, message=str(exc))
        if isinstance(exc, TaskFailed):
            return TaskState.FAILED, TaskError(
                type=exc.type, message=exc.message, details=exc.details
            )
        log.exception("task_crashed")
        return TaskState.FAILED, TaskError(
            type="internal_error", message=f"the agent loop failed: {type(exc).__name__}"
        )

    async def _record_finish(
        self,
        rt: AgentRuntime,
        task: Task,
        state: TaskState,
        result: str | None,
        error: TaskError | None,
        call: CallContext,
        started: float,
        *,
        files_changed: list[str],
    ) -> None:
        now = time.time()
        usage = call.usage
        agent_state = rt.agent.state
        if agent_state != AgentState.DELETED:
            failed = state in {TaskState.FAILED, TaskState.TIMED_OUT}
            agent_state = AgentState.FAILED if failed else AgentState.IDLE
        payload: dict[str, Any] = {
            "usage": usage.as_dict(),
            "cost_usd": call.cost_usd,
            "attempts": call.attempts,
            "run_s": round(now - started, 4),
        }
        if result is not None:
            payload["result"] = result
        if error is not None:
            payload["error"] = error.model_dump()
        if files_changed:
            payload["files_changed"] = files_changed
        usage_out = UsageOut(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            total_tokens=usage.total_tokens,
        )
        done = task.model_copy(
            update={
                "state": state,
                "result": result,
                "error": error,
                "usage": usage_out,
                "cost_usd": call.cost_usd,
                "attempts": call.attempts,
                "started_at": started,
                "finished_at": now,
                "queue_wait_s": max(0.0, started - task.created_at),
                "run_s": max(0.0, now - started),
                "files_changed": files_changed,
            }
        )

        def stored(_seqs: list[int]) -> None:
            self._book.put_finished(done)
            a = rt.agent  # as it is now: a submit may have replaced it meanwhile
            rt.agent = a.model_copy(
                update={
                    "state": agent_state if a.state != AgentState.DELETED else a.state,
                    "updated_at": now,
                    "usage": UsageOut(
                        input_tokens=a.usage.input_tokens + usage.input_tokens,
                        output_tokens=a.usage.output_tokens + usage.output_tokens,
                        total_tokens=a.usage.total_tokens + usage.total_tokens,
                    ),
                    "cost_usd": a.cost_usd + call.cost_usd,
                }
            )
            if state == TaskState.SUCCEEDED and rt.history is not None:
                rt.history.append(_turn(done))
            self._metrics.tasks_finished.labels(a.kind, state.value).inc()
            self._metrics.task_duration.labels(a.kind, state.value).observe(now - started)
            self._signal_finished(task.id)

        # the outcome, the agent's totals and the terminal event: one unit, one transaction
        await self._writer.write_durable(
            TaskFinished(
                task.id,
                state.value,
                now,
                result=result,
                error=error.model_dump() if error else None,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=usage.cached_input_tokens,
                cost_usd=call.cost_usd,
                attempts=call.attempts,
                files_changed=files_changed,
                agent_id=rt.agent.id,
                agent_state=agent_state.value,
            ),
            self.task_event(f"task.{state.value}", task, payload),
            operation="task_finished",
            on_commit=stored,
        )
        log.info(
            "task_finished",
            state=state.value,
            run_s=payload["run_s"],
            attempts=call.attempts,
            error_type=error.type if error else None,
        )

    async def _remember_session(self, rt: AgentRuntime, session_id: str | None) -> None:
        """Keep the agent's new upstream session id, in memory and in the store."""
        if session_id == rt.agent.session_id:
            return
        await self._writer.write_durable(
            AgentSessionSaved(rt.agent.id, session_id), operation="agent_session"
        )
        rt.agent = rt.agent.model_copy(update={"session_id": session_id})

    async def _history(self, rt: AgentRuntime) -> list[Message]:
        """The agent's last succeeded tasks as messages, oldest first: read from the store
        once, then kept in memory as tasks succeed."""
        turns = self._settings.chat_history_turns
        if turns == 0:
            return []
        if rt.history is None:
            done = await self._tasks.for_agent(rt.agent.id, limit=turns, state=TaskState.SUCCEEDED)
            rt.history = deque(map(_turn, reversed(done)), maxlen=turns)
        return [message for turn in rt.history for message in turn]

    def _signal_finished(self, task_id: str) -> None:
        self.waiters.finished(task_id)

    def _task_emitter(self, task: Task) -> Callable[[str, dict[str, Any]], None]:
        """Emit events about `task` from inside its run (tool calls, results)."""

        def emit(type_: str, payload: dict[str, Any]) -> None:
            self._bus.emit(
                type_, source="agent", agent=task.agent, task_id=task.id, payload=payload
            )

        return emit
